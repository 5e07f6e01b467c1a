"""A real firewalld (Debian's package) in the test's own namespaces: a private system
D-Bus and firewalld, their run, log and config directories on tmpfs of the test's
mount namespace (the host's /etc/firewalld is copied, never written), both ended by
PID. Never on the host: only call this inside `run_isolated`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from isolation import end_with_test

_DBUS_DEST = "org.fedoraproject.FirewallD1"


def _tmpfs(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "cnm-test", path], check=True)


def _answers() -> bool:
    done = subprocess.run(
        ["dbus-send", "--system", "--print-reply", f"--dest={_DBUS_DEST}",
         "/org/fedoraproject/FirewallD1", f"{_DBUS_DEST}.getDefaultZone"],
        capture_output=True, text=True, check=False)
    return done.returncode == 0


@contextmanager
def running_firewalld(timeout: float = 90.0) -> Iterator[None]:
    config = tempfile.mkdtemp(prefix="cnm-firewalld-")
    shutil.copytree("/etc/firewalld", config, dirs_exist_ok=True)
    for path in ("/run/dbus", "/run/firewalld", "/var/log"):
        _tmpfs(path)
    subprocess.run(["mount", "--bind", config, "/etc/firewalld"], check=True)
    dbus = subprocess.Popen(["dbus-daemon", "--system", "--nofork", "--nopidfile"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=end_with_test)
    daemon: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists("/run/dbus/system_bus_socket"):
            assert time.monotonic() < deadline, "dbus-daemon did not start"
            time.sleep(0.05)
        daemon = subprocess.Popen(["firewalld", "--nofork", "--nopid"], preexec_fn=end_with_test,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers():
            assert daemon.poll() is None, "firewalld exited"
            assert time.monotonic() < deadline, "firewalld did not answer"
            time.sleep(0.2)
        yield
    finally:
        for process in (daemon, dbus):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

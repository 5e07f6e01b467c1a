"""The test's host: tmpfs over every peer directory, processes ended by PID, robust
waits, an outside host behind an uplink, named namespaces."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST, OUTSIDE = "203.0.113.1", "203.0.113.2"
#: Directories a peer writes to by default; each gets a private tmpfs in the test's
#: mount namespace, even where the peer is also told to use another path.
PEER_DIRS = ("/etc/docker", "/var/lib/docker", "/run/docker", "/var/lib/containerd",
             "/run/containerd", "/var/lib/cni", "/run/cni", "/etc/cni", "/run/dbus",
             "/run/containers", "/var/lib/containers")



def private_dirs(base: Path) -> Path:
    """tmpfs on every peer directory and on `base` (the test's own scratch tree).

    /run/dbus too: no peer may find the machine's system bus (dockerd and netavark
    would register with a firewalld they found there)."""
    for directory in (str(base), *PEER_DIRS):
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "cnm-peer", directory], check=True)
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of our daemons come here
    return base


def children() -> list[int]:
    """PIDs of this process's direct children (including reparented orphans)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            found += [int(pid) for pid in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def end_process(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM one process we started, wait for it, SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_for(lambda: _reaped(pid), timeout):
            return


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:  # not our child (already reaped): gone when /proc says so
        return not Path(f"/proc/{pid}").exists()


def end_children() -> None:
    """End every remaining child of this process, by PID (shims, proxies, daemons)."""
    for pid in children():
        end_process(pid, timeout=10.0)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)



def build_outside() -> None:
    """Uplink up0 (host 203.0.113.1) to the outside host 203.0.113.2 in netns `outside`,
    which has no route to any container subnet: replies need the host's masquerade."""
    for command in (
        "ip netns add outside",
        "ip link add up0 type veth peer name eth0 netns outside",
        f"ip addr add {HOST}/24 dev up0",
        "ip link set up0 up",
        f"ip -n outside addr add {OUTSIDE}/24 dev eth0",
        "ip -n outside link set eth0 up",
        "ip -n outside link set lo up",
    ):
        subprocess.run(command.split(), check=True)


def add_netns(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)


def del_netns(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=True)

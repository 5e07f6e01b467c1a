"""Run a callable in a fresh network + mount namespace, in a forked child.

Every kernel-touching test goes through here, so nothing it creates (links,
named namespaces, files under /run/netns, /etc/netns, /run/cnm, nftables
tables) can reach the machine's own network, and each test starts from an
empty namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import subprocess
import traceback
from collections.abc import Callable
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
PRIVATE_DIRS = ("/run/netns", "/etc/netns", "/run/cnm", "/var/lib/cnm")

_libc = ctypes.CDLL(None, use_errno=True)


PR_SET_PDEATHSIG = 1
SIGKILL = 9


def end_with_test() -> None:
    """`preexec_fn` for a daemon a test starts (etcd, dockerd, containerd, dbus,
    firewalld), and the first call of an isolated test's child: the kernel kills it
    when its parent ends, so a test that is itself killed (a timeout, an interrupted
    run) leaves no daemon, and no test, behind in its namespace. A normal teardown
    still stops a daemon first, by PID."""
    _libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)


def signals_as_typed() -> None:
    """`preexec_fn` for a cnm command a test interrupts (Ctrl-C, a hang-up): it starts
    with SIGINT, SIGHUP and SIGTERM at their defaults, as a command typed at a terminal
    does, whatever this test run inherited (`nohup` ignores SIGHUP, and a script's
    `cmd &` ignores SIGINT, which Python and cnm rightly keep ignoring)."""
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def enter_fresh_namespaces() -> None:
    """Unshare net + mount namespaces and put private tmpfs on the cnm directories."""
    if _libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    for directory in PRIVATE_DIRS:
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "cnm-test", directory], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    wanted = os.environ.get(BRIDGE_NF_ENV)
    if wanted is not None:
        set_bridge_nf(wanted == "1")


#: Set by the `bridge_nf` fixture (tests/kernel/bridge_nf.py): "1" runs the test with
#: br_netfilter's bridge-nf-call-ip(6)tables on in its namespace, "0" with it off.
BRIDGE_NF_ENV = "CNM_TEST_BRIDGE_NF"
BRIDGE_NF_DIR = "/proc/sys/net/bridge"


def set_bridge_nf(on: bool) -> None:
    """br_netfilter's switches in this (fresh) namespace only. Loading the module when
    it is absent (for "on") makes new namespaces start with them on; the host's own
    namespace is not changed here (docs/firewall.md, "br_netfilter")."""
    if not os.path.isdir(BRIDGE_NF_DIR):
        if not on:
            return  # absent: bridged frames never reach the IP hooks
        subprocess.run(["modprobe", "br_netfilter"], check=True)
    for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        with open(f"{BRIDGE_NF_DIR}/{name}", "w") as switch:
            switch.write("1" if on else "0")


def end_resolvers() -> None:
    """End the resolvers cnm started in this test (their pid files are on the test's
    private /run/cnm), by pid, whether or not the test deleted its networks. Which
    process is a set's resolver is cnm's own verdict (`running_pid`: a reused pid of
    another test's resolver, the same path elsewhere, is not this one)."""
    import glob

    from reconciler.kernel.resolver import running_pid

    for pidfile in glob.glob("/run/cnm/resolver/*/pid"):
        pid = running_pid(os.path.dirname(pidfile))
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _run_child(
    parent: int,
    read_fd: int,
    write_fd: int,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """The forked child's whole life: it dies with the test run (a killed run leaves
    no test behind), runs func in fresh namespaces and reports through the pipe."""
    end_with_test()
    if os.getppid() != parent:  # the runner died before the line above took effect
        os._exit(1)
    os.close(read_fd)
    status = 0
    try:
        enter_fresh_namespaces()
        result: tuple[str, Any] = ("ok", func(*args, **kwargs))
    except BaseException as exc:  # report everything, including pytest's outcomes
        status = 1
        result = ("error", (type(exc).__name__, str(exc), traceback.format_exc()))
    finally:
        end_resolvers()
    try:
        payload = pickle.dumps(result)
    except Exception:
        payload = pickle.dumps(("ok", None)) if status == 0 else pickle.dumps(
            ("error", ("Error", "unpicklable", ""))
        )
    with os.fdopen(write_fd, "wb") as pipe:
        pipe.write(payload)
    os._exit(status)


def run_isolated(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call func(*args, **kwargs) in a child with fresh namespaces; re-raise its failure here."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child
        try:
            _run_child(parent, read_fd, write_fd, func, args, kwargs)
        finally:
            # Never return into pytest: a child whose report cannot be written (its
            # runner was killed, so the pipe is broken) would otherwise carry on
            # running the rest of the session as an orphan, in the test's namespaces.
            os._exit(1)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        payload = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    if not payload:
        raise AssertionError(f"isolated child died without a report (wait status {wait_status})")
    kind, value = pickle.loads(payload)
    if kind == "error":
        name, message, trace = value
        if name == "Skipped":
            import pytest

            pytest.skip(message)
        raise AssertionError(f"in isolated namespace: {name}: {message}\n{trace}")
    return value

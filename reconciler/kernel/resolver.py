"""cnm's resolver process, as the kernel layer sees it: observed, started, reloaded, stopped.

The state is what can be observed, nothing more: the set's directory
`/run/cnm/resolver/<set>/` holds `config.json` (its owner marker inside), the
`pid` of the process and its `log`. A process counts as the resolver only when
its command line names that directory (`reconciler.resolver.server DIR`), so a
reused pid is never signalled; it counts as serving only when it answers
`records.STATUS_NAME` on its first listen address with the digest of the
configuration file. A `kill -9`, a stopped process or a stale configuration
read back as a `process` value other than `serving`: drift the next plan shows.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from reconciler.kernel.resolver_standby import Standby, server_command, server_env
from reconciler.resolver.records import (
    KIND,
    RUN_DIR,
    SERVING,
    STATUS_NAME,
    attrs_of_config,
    config_text,
    digest,
)
from reconciler.state import AttrValue, Resource, ResourceKey

NOT_RUNNING = "not running"
NOT_ANSWERING = "running, not answering"
STALE = "serving another configuration"
_PORT = 53
_START_TIMEOUT = 10.0
_FILES = ("config.json", "config.json.tmp", "pid", "pid.tmp", "log")


def directory_of(set_name: str) -> str:
    return f"{RUN_DIR}/{set_name}"


def observe(set_name: str) -> Resource | None:
    """The set's resolver as it is now, or None when it has neither files nor a process."""
    directory = directory_of(set_name)
    try:
        text: str | None = Path(f"{directory}/config.json").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        text = None
    pid = running_pid(directory)
    if text is None and pid is None:
        return None
    attrs: dict[str, AttrValue] = dict(attrs_of_config(set_name, text or "") or {})
    if pid is None:
        attrs["process"] = NOT_RUNNING
    else:
        attrs["process"] = _serving(attrs, text or "")
    return Resource(ResourceKey(KIND, set_name), set_name, attrs)


def running_pid(directory: str) -> int | None:
    """The pid of the resolver serving `directory`, when it is alive (not a zombie).

    The pid file's process must be a resolver named for `directory` that sees this
    very directory there: a resolver of another mount namespace (a test's, a
    container's: the same path, other files) that was given a reused pid is not
    this one.
    """
    try:
        pid = int(Path(f"{directory}/pid").read_text(encoding="ascii").strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        elsewhere = not os.path.samefile(f"/proc/{pid}/root{directory}", directory)
    except (OSError, ValueError):
        return None
    if b"reconciler.resolver.server" not in cmdline or directory.encode() not in cmdline \
            or elsewhere:
        return None  # the pid was reused by another process: not ours to signal
    if stat[stat.rfind(")") + 2:].startswith(("Z", "X")):
        return None
    return pid


def _serving(attrs: dict[str, AttrValue], text: str) -> str:
    listen = attrs.get("listen")
    if not isinstance(listen, tuple) or not listen:
        return NOT_ANSWERING
    address = min((str(entry).split(" ")[0] for entry in listen), key=lambda a: (":" in a, a))
    served = status(address)
    if served is None:
        return NOT_ANSWERING
    return SERVING if served == digest(text) else STALE


def status(address: str, timeout: float = 1.0, attempts: int = 2) -> str | None:
    """The digest the resolver at `address` serves, or None without an answer.

    It is given `attempts` × `timeout` seconds. A query that is refused or cannot be
    sent (nothing bound there, no route: a moment's state, as while a link or the
    resolver's sockets are being replaced) is sent again after a short pause, not at
    once: two back-to-back refusals once made a serving resolver look "not answering"
    for a whole plan.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    query_id = int.from_bytes(os.urandom(2), "big")  # (the `secrets` module costs ~10 ms to load)
    question = b"".join(bytes([len(p)]) + p.encode() for p in STATUS_NAME.split(".") if p)
    packet = (query_id.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
              + question + b"\x00\x00\x10\x00\x01")  # TXT, IN
    deadline = time.monotonic() + timeout * attempts
    pause = 0.01
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(min(timeout, left))
            try:
                sock.connect((address, _PORT))
                sock.send(packet)
                answer = sock.recv(512)
            except TimeoutError:
                continue  # asked again, on a fresh socket
            except OSError:  # refused, unreachable
                answer = b""
        if answer[:2] == packet[:2] and len(answer) > len(packet) + 33:
            return answer[-32:].decode("ascii", errors="replace")  # the TXT string
        # refused, unreachable or not its answer: wait a little, then ask again
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.2)


def ensure(set_name: str, attrs: dict[str, AttrValue], standby: Standby | None = None) -> None:
    """Make the set's resolver serve `attrs`: write its configuration, then reload the
    running process or start one (`standby`, when given, is that one's interpreter,
    started earlier: see kernel/resolver_standby.py), and wait until it answers with the
    new digest."""
    directory = directory_of(set_name)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    text = config_text(set_name, attrs)
    target = f"{directory}/config.json"
    try:
        current: str | None = Path(target).read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current != text:  # cnm's own file, read by the resolver alone: replaced by rename
        Path(f"{target}.tmp").write_text(text, encoding="utf-8")
        os.replace(f"{target}.tmp", target)
    pid = running_pid(directory)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
    else:
        _start(directory, standby if standby is not None and standby.directory == directory
               else None)
    _wait_serving(set_name, attrs, digest(text))


def _start(directory: str, standby: Standby | None) -> None:
    if standby is not None:
        returncode, stderr = standby.start(_START_TIMEOUT)
    else:
        done = subprocess.run(
            server_command(directory),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=server_env(), timeout=_START_TIMEOUT, check=False, close_fds=True,
        )
        returncode, stderr = done.returncode, done.stderr
    if returncode != 0:
        reason = stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise OSError(f"the resolver did not start: {reason[-1] if reason else returncode}")


def standby_for(set_name: str, actions: Iterable[tuple[str, str, Resource | None]]
                ) -> Standby | None:
    """The early-started interpreter of the resolver that executing a plan will start
    (`actions`: its (verb, kind, observed resource) triples), or None."""
    if not starts_process(actions):
        return None
    try:
        return Standby(directory_of(set_name))
    except OSError:  # the resolver's step starts it the usual way, and says what fails
        return None


def starts_process(actions: Iterable[tuple[str, str, Resource | None]]) -> bool:
    """Whether these actions start a resolver process: they create or update the set's
    Resolver while no process of it runs (a running one is reloaded instead)."""
    for verb, kind, observed in actions:
        if kind != KIND or verb == "delete":
            continue
        return observed is None or observed.get("process") == NOT_RUNNING
    return False


def _wait_serving(set_name: str, attrs: dict[str, AttrValue], wanted: str) -> None:
    listen = attrs.get("listen")
    assert isinstance(listen, tuple) and listen
    address = min((str(entry).split(" ")[0] for entry in listen), key=lambda a: (":" in a, a))
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if status(address, timeout=0.2, attempts=1) == wanted:
            return
        time.sleep(0.01)
    raise OSError(f"{KIND}/{set_name} does not serve its configuration on {address}")


def stop(set_name: str) -> None:
    """End the set's resolver (only a process whose command line names its directory)
    and remove its files."""
    directory = directory_of(set_name)
    pid = running_pid(directory)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        while running_pid(directory) == pid and time.monotonic() < deadline:
            time.sleep(0.01)
        if running_pid(directory) == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name in _FILES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{directory}/{name}")
    with contextlib.suppress(OSError):  # absent, or holds files cnm does not own
        os.rmdir(directory)


class ProcessWatch:
    """The resolver's death as an event for `cnm watch`: a pidfd of the running resolver,
    registered in watch's selector (readable once the process has ended), followed
    again after each reconcile (`follow`), so a `kill -9` wakes watch, which repairs it."""

    def __init__(self, selector: selectors.BaseSelector, set_name: str) -> None:
        self.selector = selector
        self.set_name = set_name
        self.fd: int | None = None
        self.pid: int | None = None

    def follow(self) -> None:
        pid = running_pid(directory_of(self.set_name))
        if pid is not None and pid == self.pid:
            return
        self.close()
        if pid is None:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone meanwhile: the next observation says so
            return
        self.selector.register(fd, selectors.EVENT_READ, ("resolver", None))
        self.fd, self.pid = fd, pid

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.fd)
            os.close(self.fd)
        self.fd = self.pid = None

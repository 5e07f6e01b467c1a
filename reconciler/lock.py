"""One writer at a time: an flock(2) on /run/cnm/apply.lock.

apply, delete (and watch, for each reconciliation) hold it from their first
observation to their verification. The kernel drops an flock when its holder
dies, so a lock left by a killed process never blocks the next run; the PID
written into the file only serves to tell a waiting user who holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import LockError

LOCK_PATH = Path("/run/cnm/apply.lock")
_POLL = 0.05


def describe_holder(path: Path = LOCK_PATH) -> str:
    """'pid 1234 (cnm apply -f net/)' for the process the lock file names, as well as known."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return "another cnm process"
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    words = [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]
    if len(words) >= 3 and words[1:3] == ["-m", "reconciler"]:
        words = ["cnm", *words[3:]]
    elif words:
        words[0] = os.path.basename(words[0])
    command = " ".join(words)
    command = "".join(c if c.isprintable() else "?" for c in command)
    if len(command) > 80:
        command = command[:77] + "..."
    return f"pid {pid} ({command})" if command else f"pid {pid}"


@contextmanager
def apply_lock(
    timeout: float = 60.0, notify: Callable[[str], None] | None = None, path: Path = LOCK_PATH
) -> Iterator[None]:
    """Hold the apply lock for the block; wait up to `timeout` seconds for it.

    A waiting run says once, in one line, who it waits for; after `timeout`
    it gives up with a LockError that names the holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"{describe_holder(path)} still holds {path} after {timeout:g} s "
                        "(--lock-timeout); try again when it has finished"
                    ) from None
                if notify is not None and not told:
                    notify(
                        f"waiting for {describe_holder(path)} to release {path} "
                        f"(up to {timeout:g} s, --lock-timeout)"
                    )
                    told = True
                time.sleep(_POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)

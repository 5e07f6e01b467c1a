"""One writer at a time: an flock(2) on /run/cnm/apply.lock.

The kernel drops an flock when its holder dies, so a lock left by a killed
process never blocks the next run.
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


@contextmanager
def apply_lock(
    timeout: float = 60.0, notify: Callable[[str], None] | None = None, path: Path = LOCK_PATH
) -> Iterator[None]:
    """Hold the apply lock for the block; wait up to `timeout` seconds for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"another cnm apply holds {path}; gave up after {timeout:g} s "
                        "(--lock-timeout)"
                    ) from None
                if notify is not None and not told:
                    notify(f"waiting for another cnm apply to finish ({path})")
                    told = True
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)

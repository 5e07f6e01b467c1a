"""`cnm apply --confirm SECONDS` and `cnm confirm`: keep a change only if someone says so.

Like `netplan try`: for changes made over the very network being changed.
The applying process (which still holds the apply lock) records a pending
confirmation in `/run/cnm/confirm/pending` and waits. `cnm confirm`, typed
in any other shell, renames that file to `confirmed`; when the time is up
the waiting process renames it to `expired` and rolls back. A rename is
atomic, so exactly one of the two wins, and `cnm confirm` can say for sure
whether the changes are kept.

A hang-up (the SSH session over the changed network died), SIGTERM or
Ctrl-C while waiting ends the wait at once, unconfirmed: the changes are
rolled back. Pressing Enter on the applying terminal confirms too.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType

from reconciler.errors import CnmError

CONFIRM_DIR = Path("/run/cnm/confirm")
_POLL = 0.05


class ConfirmError(CnmError):
    """`cnm confirm` found nothing to confirm, or came too late."""


class Reason(StrEnum):
    """Why the wait for a confirmation ended."""

    CONFIRMED = "confirmed"
    TIMEOUT = "timeout"
    SIGHUP = "SIGHUP"  # the terminal hung up (an SSH session over the changed network)
    SIGTERM = "SIGTERM"
    INTERRUPTED = "interrupted"  # Ctrl-C
    CANNOT_WAIT = "cannot wait"  # the pending record could not be written: nobody can confirm


@dataclass(frozen=True)
class Outcome:
    confirmed: bool
    reason: Reason
    detail: str = ""  # what went wrong, for CANNOT_WAIT

    def describe(self, seconds: float) -> str:
        """Why the changes are rolled back, in the words the user reads."""
        if self.reason is Reason.TIMEOUT:
            return f"not confirmed within {seconds:g} s"
        if self.reason is Reason.CANNOT_WAIT:
            return f"cannot wait for `cnm confirm` ({self.detail})"
        return f"{self.reason} while waiting for confirmation"


def _paths(directory: Path) -> tuple[Path, Path, Path]:
    return directory / "pending", directory / "confirmed", directory / "expired"


class Interrupts:
    """Record SIGHUP / SIGTERM instead of dying of them, while installed."""

    SIGNALS = (signal.SIGHUP, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: Reason | None = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.received = Reason(signal.Signals(signum).name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        previous = {sig: signal.signal(sig, self._handler) for sig in self.SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _enter_pressed() -> bool:
    try:
        if not sys.stdin.isatty():
            return False
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        return bool(ready) and sys.stdin.readline() != ""
    except (OSError, ValueError):
        return False


def wait_for_confirmation(
    seconds: float,
    set_name: str,
    *,
    interrupts: Interrupts | None = None,
    directory: Path = CONFIRM_DIR,
    clock: Callable[[], float] = time.monotonic,
    ready: Callable[[], None] | None = None,
) -> Outcome:
    """Wait up to `seconds` for `cnm confirm` (or Enter); decide atomically.

    `ready` is called once `cnm confirm` can find the pending record (to tell the user).
    """
    pending, confirmed, expired = _paths(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in (pending, confirmed, expired):
        stale.unlink(missing_ok=True)  # we hold the apply lock: anything here is stale
    record = {"pid": os.getpid(), "set": set_name, "seconds": seconds,
              "deadline": time.time() + seconds}
    temporary = directory / ".pending.tmp"
    temporary.write_text(json.dumps(record))
    os.replace(temporary, pending)
    if ready is not None:
        ready()
    deadline = clock() + seconds
    reason = Reason.TIMEOUT
    try:
        while clock() < deadline:
            if interrupts is not None and interrupts.received:
                reason = Reason(interrupts.received)
                break
            if confirmed.exists() and not pending.exists():
                return Outcome(True, Reason.CONFIRMED)
            if _enter_pressed():
                with contextlib.suppress(FileNotFoundError):
                    os.rename(pending, confirmed)
            time.sleep(_POLL)
        try:
            os.rename(pending, expired)  # the decision: from here on, `cnm confirm` is too late
        except FileNotFoundError:
            return Outcome(True, Reason.CONFIRMED)  # confirmed in the last instant
        return Outcome(False, reason)
    finally:
        for path in (confirmed, expired):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def confirm_pending(directory: Path = CONFIRM_DIR) -> str:
    """Confirm the pending apply; return a one-line report or raise ConfirmError."""
    pending, confirmed, _ = _paths(directory)
    try:
        record = json.loads(pending.read_text())
        pid, set_name = int(record["pid"]), str(record["set"])
    except FileNotFoundError:
        raise ConfirmError(
            "no apply is waiting for confirmation (it may have been rolled back already)"
        ) from None
    except PermissionError:
        raise ConfirmError(f"cannot read {pending}: permission denied (run as root)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfirmError(f"{pending} is not a pending confirmation ({exc})") from exc
    if not _alive(pid):
        pending.unlink(missing_ok=True)
        raise ConfirmError(
            f"no apply is waiting for confirmation (pid {pid}, which asked for it, is gone; "
            "its changes stay as they are)"
        )
    try:
        os.rename(pending, confirmed)
    except FileNotFoundError:
        raise ConfirmError(
            f"too late: the apply of set '{set_name}' (pid {pid}) is already rolling back"
        ) from None
    except PermissionError:
        raise ConfirmError(f"cannot confirm via {directory}: permission denied (run as root)") \
            from None
    return f"Confirmed: the changes of apply set '{set_name}' (pid {pid}) are kept."

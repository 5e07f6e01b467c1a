"""Fault injection for the reliability tests; inert unless the test harness sets CNM_FAULT.

The engine and the kernel steps call `point(name)` at every place where a
crash would leave a distinct kernel state: after each plan step, and inside
the steps that make more than one kernel change (a link created but not yet
labelled, a namespace without its files, ...). Points are numbered in the
order this process reaches them, starting at 1.

    CNM_FAULT="crash@7"        SIGKILL this process at point 7 (nothing runs after it)
    CNM_FAULT="fail@7"         raise an InjectedFault (a KernelError) at point 7
    CNM_FAULT="hang@1"         sleep at point 1 until killed (holds the lock: lock tests)
    CNM_FAULT="skip-step@3"    do not run step 3 of the first plan (verification must notice;
                               a rollback that follows runs all of its steps)
    CNM_FAULT_TRACE=FILE       append "<number> <name>" for every point reached

Several faults may be given, separated by commas. Production runs never set
these variables; when unset, a point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
import time

from reconciler.errors import KernelError

FAULT_ENV = "CNM_FAULT"
TRACE_ENV = "CNM_FAULT_TRACE"
ACTIONS = ("crash", "fail", "hang", "skip-step")

_reached = 0
_skipped: set[int] = set()


class InjectedFault(KernelError):
    """A failure the test harness asked for (CNM_FAULT=fail@N)."""


def parse(spec: str) -> dict[int, str]:
    """`"crash@3,skip-step@2"` -> {3: "crash"} for points; steps are keyed negatively."""
    faults: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        action, _, number = item.partition("@")
        if action not in ACTIONS or not number.isdigit() or int(number) < 1:
            raise ValueError(f"{FAULT_ENV}: {item!r} is not <{'|'.join(ACTIONS)}>@<n>")
        faults[-int(number) if action == "skip-step" else int(number)] = action
    return faults


def _faults() -> dict[int, str]:
    spec = os.environ.get(FAULT_ENV)
    return parse(spec) if spec else {}


def reset() -> None:
    """Start numbering points from 1 again (for in-process tests)."""
    global _reached
    _reached = 0
    _skipped.clear()


def point(name: str) -> None:
    """A place where the harness may crash, fail or hang this process."""
    if FAULT_ENV not in os.environ and TRACE_ENV not in os.environ:
        return
    global _reached
    _reached += 1
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{_reached} {name}\n")
    action = _faults().get(_reached)
    if action == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # SIGKILL is delivered before this returns
    elif action == "fail":
        raise InjectedFault(f"injected fault at point {_reached} ({name})")
    elif action == "hang":
        while True:
            time.sleep(3600)


def skip_step(number: int) -> bool:
    """True when the harness asked that plan step `number` not be run."""
    if FAULT_ENV not in os.environ or number in _skipped:
        return False
    if _faults().get(-number) != "skip-step":
        return False
    _skipped.add(number)
    return True

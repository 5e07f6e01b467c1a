"""`cnm apply --confirm SECONDS` and `cnm confirm` with real processes (like `netplan try`):
kept when confirmed in time, rolled back exactly when not, or when the session hangs up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import scenario
from faultlib import (
    apply_all,
    assert_canonical_equal,
    canonical,
    inproc,
    observed,
    ok,
    record_count,
)

from helpers import REPO
from isolation import signals_as_typed

KEEP = "Applied and verified. Keep these changes? Run `cnm confirm` within"


def _setup(tmp_path: Path) -> tuple[str, str]:
    a, b = scenario.dirs(tmp_path)
    apply_all(a)
    return a, b


def _trying(b: str, seconds: int) -> subprocess.Popen[str]:
    """`cnm apply --confirm` in the background, returned once it waits for confirmation."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", b, "--yes", "--confirm", str(seconds)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=signals_as_typed,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(KEEP):
            assert line.strip() == f"{KEEP} {seconds} s, or they are rolled back."
            return process
    raise AssertionError(f"apply --confirm never asked: exit {process.wait()}")


def test_unconfirmed_changes_are_rolled_back_exactly(tmp_path: Path) -> None:
    a, b = _setup(tmp_path)
    before, before_observed = canonical(), observed()
    start = time.monotonic()
    process = _trying(b, 2)
    assert canonical() != before  # the change is live while it waits
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert time.monotonic() - start >= 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("cnm: not confirmed within 2 s; rolled back: ")
    assert last.endswith(" changes undone, the kernel is as before this apply (verified)")
    assert_canonical_equal(before, canonical(), "after an unconfirmed apply")
    assert observed() == before_observed
    assert inproc("plan", "-f", a, "--detailed-exitcode")[0] == 0


def test_confirmed_changes_are_kept(tmp_path: Path) -> None:
    a, b = _setup(tmp_path)
    process = _trying(b, 60)
    # while it waits, it still holds the lock: nobody else changes anything meanwhile
    code, _, err = inproc("apply", "-f", a, "--yes", "--lock-timeout", "0")
    assert code == 1 and "still holds /run/cnm/apply.lock" in err
    confirmed = subprocess.run([sys.executable, "-m", "reconciler", "confirm"], cwd=REPO,
                               capture_output=True, text=True, timeout=30)
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout == (f"Confirmed: the changes of apply set 'default' "
                                f"(pid {process.pid}) are kept.\n")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Confirmed: the changes are kept." in err and "Apply complete" in err
    assert inproc("plan", "-f", b, "--detailed-exitcode")[0] == 0
    code, _, err = inproc("confirm")
    assert code == 1 and err.startswith("cnm: no apply is waiting for confirmation")


def test_hang_up_while_waiting_rolls_back_at_once(tmp_path: Path) -> None:
    """The SSH session over the changed network died: the terminal's SIGHUP (or a SIGTERM)
    must not leave the unconfirmed change in place until the timeout."""
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        a, b = _setup(tmp_path)
        before = canonical()
        process = _trying(b, 300)
        start = time.monotonic()
        os.kill(process.pid, sig)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 1
        assert time.monotonic() - start < 10
        last = err.strip().splitlines()[-1]
        name = "interrupted" if sig == signal.SIGINT else sig.name
        assert last.startswith(f"cnm: {name} while waiting for confirmation; rolled back: ")
        assert_canonical_equal(before, canonical(), f"after {sig.name}")
    record_count("confirm: unconfirmed, confirmed, SIGHUP, SIGTERM, SIGINT", 5)


def test_confirm_after_the_waiter_was_killed_says_so(tmp_path: Path) -> None:
    _, b = _setup(tmp_path)
    process = _trying(b, 300)
    process.kill()
    process.wait()
    code, _, err = inproc("confirm")
    assert code == 1
    assert err.strip() == (f"cnm: no apply is waiting for confirmation (pid {process.pid}, which "
                           "asked for it, is gone; its changes stay as they are)")
    # the next apply converges as after any crash
    ok("apply", "-f", b, "--yes")


def test_confirm_cannot_go_with_no_rollback(tmp_path: Path) -> None:
    a, _ = _setup(tmp_path)
    code, _, err = inproc("apply", "-f", a, "--yes", "--confirm", "5", "--no-rollback")
    assert code == 1 and "cannot go with --no-rollback" in err
    code, _, err = inproc("apply", "-f", a, "--yes", "--confirm", "-1")
    assert code == 1 and "must be a finite number of seconds >= 0" in err  # a usage error: 1

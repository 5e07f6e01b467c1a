"""`apply --confirm` / `cnm confirm`: one atomic decision between confirming and expiring."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from reconciler.confirm import ConfirmError, Interrupts, confirm_pending, wait_for_confirmation


def test_unconfirmed_wait_expires_and_leaves_nothing_to_confirm(tmp_path: Path) -> None:
    start = time.monotonic()
    outcome = wait_for_confirmation(0.2, "default", directory=tmp_path)
    assert (outcome.confirmed, outcome.reason) == (False, "timeout")
    assert 0.2 <= time.monotonic() - start < 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(ConfirmError, match="no apply is waiting for confirmation"):
        confirm_pending(tmp_path)


def test_confirm_from_another_process_is_seen_at_once(tmp_path: Path) -> None:
    answers: list[str] = []

    def confirm_soon() -> None:
        while not (tmp_path / "pending").exists():
            time.sleep(0.01)
        record = json.loads((tmp_path / "pending").read_text())
        assert record["pid"] == os.getpid() and record["set"] == "web"
        answers.append(confirm_pending(tmp_path))

    helper = threading.Thread(target=confirm_soon)
    helper.start()
    start = time.monotonic()
    outcome = wait_for_confirmation(30, "web", directory=tmp_path)
    helper.join()
    assert outcome.confirmed and time.monotonic() - start < 2
    assert answers == [f"Confirmed: the changes of apply set 'web' (pid {os.getpid()}) are kept."]
    assert list(tmp_path.iterdir()) == []


def test_a_hang_up_ends_the_wait_unconfirmed(tmp_path: Path) -> None:
    interrupts = Interrupts()
    interrupts.received = "SIGHUP"
    outcome = wait_for_confirmation(30, "default", interrupts=interrupts, directory=tmp_path)
    assert (outcome.confirmed, outcome.reason) == (False, "SIGHUP")


def test_signals_are_recorded_while_installed(tmp_path: Path) -> None:
    import signal

    interrupts = Interrupts()
    before = signal.getsignal(signal.SIGHUP)  # SIG_IGN under nohup
    with interrupts.installed():
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.01)
    assert interrupts.received == "SIGHUP"
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_dead_waiter_is_reported_and_forgotten(tmp_path: Path) -> None:
    (tmp_path / "pending").write_text(json.dumps({"pid": 999_999_999, "set": "default"}))
    with pytest.raises(ConfirmError, match="pid 999999999, which asked for it, is gone"):
        confirm_pending(tmp_path)
    assert not (tmp_path / "pending").exists()


def test_a_garbled_record_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pending").write_text("{not json")
    with pytest.raises(ConfirmError, match="is not a pending confirmation"):
        confirm_pending(tmp_path)


def test_stale_files_of_an_earlier_run_do_not_confirm(tmp_path: Path) -> None:
    (tmp_path / "confirmed").write_text("")
    outcome = wait_for_confirmation(0.1, "default", directory=tmp_path)
    assert not outcome.confirmed

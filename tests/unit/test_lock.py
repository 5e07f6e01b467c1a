"""One writer at a time: the apply lock waits, names its holder, gives up clearly,
and is never held by a dead process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.errors import LockError
from reconciler.lock import apply_lock, describe_holder

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from pathlib import Path
from reconciler.lock import apply_lock
with apply_lock(path=Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@contextmanager
def holder(path: Path, seconds: float = 60) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the lock for `seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], cwd=ROOT,
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


def test_lock_records_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "apply.lock"
    with apply_lock(path=path):
        assert path.read_text() == f"{os.getpid()}\n"
        assert describe_holder(path).startswith(f"pid {os.getpid()} (")


def test_second_writer_gives_up_after_the_timeout_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "apply.lock"
    told: list[str] = []
    with holder(path) as other:
        who = describe_holder(path)
        start = time.monotonic()
        with pytest.raises(LockError) as info, apply_lock(0.3, told.append, path):
            pass
        waited = time.monotonic() - start
    assert who.startswith(f"pid {other.pid} (python") and " -c " in who
    assert 0.3 <= waited < 2
    message = info.value.one_line()
    assert message == (f"{who} still holds {path} after 0.3 s (--lock-timeout); "
                       "try again when it has finished")
    assert told == [f"waiting for {who} to release {path} (up to 0.3 s, --lock-timeout)"]


def test_zero_timeout_tries_once(tmp_path: Path) -> None:
    path = tmp_path / "apply.lock"
    with holder(path):
        start = time.monotonic()
        with pytest.raises(LockError), apply_lock(0, None, path):
            pass
        assert time.monotonic() - start < 0.5


def test_waiting_writer_proceeds_when_the_holder_finishes(tmp_path: Path) -> None:
    path = tmp_path / "apply.lock"
    told: list[str] = []
    with holder(path, seconds=0.5), apply_lock(10, told.append, path):
        assert path.read_text() == f"{os.getpid()}\n"
    assert len(told) == 1 and told[0].startswith("waiting for pid ")


def test_lock_of_a_killed_process_never_blocks(tmp_path: Path) -> None:
    path = tmp_path / "apply.lock"
    with holder(path) as other:
        os.kill(other.pid, signal.SIGKILL)
        other.wait()
        assert path.read_text() == f"{other.pid}\n"  # its PID is still written there
        start = time.monotonic()
        with apply_lock(0, None, path):
            pass
        assert time.monotonic() - start < 0.2


def test_holder_description_is_safe_for_odd_files(tmp_path: Path) -> None:
    path = tmp_path / "apply.lock"
    assert describe_holder(path) == "another cnm process"
    path.write_text("garbage\n")
    assert describe_holder(path) == "another cnm process"
    path.write_text("999999999\n")
    assert describe_holder(path) == "pid 999999999"

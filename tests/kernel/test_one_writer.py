"""One writer at a time, with real cnm processes: a second apply or delete waits with a
message, gives up clearly after --lock-timeout, and a killed holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import scenario
from faultlib import inproc

from helpers import REPO, assert_same_kernel, kernel_dump, netns_names, wait_for


def _hanging_apply(manifests: str, trace: Path) -> subprocess.Popen[str]:
    """`cnm apply` that stops (holding the lock) just before its first change."""
    env = {**os.environ, "CNM_FAULT": "hang@1", "CNM_FAULT_TRACE": str(trace)}
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", manifests, "--yes"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    assert wait_for(lambda: trace.exists() and trace.read_text(), timeout=20)
    return process


def _cnm(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_writer_waits_then_fails_clearly_and_changes_nothing(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    first = _hanging_apply(b, tmp_path / "trace")
    try:
        before = kernel_dump()
        for command in (["apply", "-f", a, "--yes"], ["delete", "-f", a, "--yes"]):
            start = time.monotonic()
            second = _cnm(*command, "--lock-timeout", "1")
            _, err = second.communicate(timeout=30)
            assert second.returncode == 1
            assert 1 <= time.monotonic() - start < 10
            lines = err.strip().splitlines()
            assert len(lines) == 2, err
            who = f"pid {first.pid} (cnm apply -f {b}"[:60]
            assert lines[0].startswith(f"waiting for {who}")
            assert lines[0].endswith(") to release /run/cnm/apply.lock "
                                     "(up to 1 s, --lock-timeout)")
            assert lines[1].startswith(f"cnm: {who}")
            assert lines[1].endswith(") still holds /run/cnm/apply.lock after 1 s "
                                     "(--lock-timeout); try again when it has finished")
        assert_same_kernel(before, kernel_dump())
    finally:
        first.kill()
        first.wait()


def test_waiting_writer_proceeds_as_soon_as_the_holder_is_killed(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    first = _hanging_apply(b, tmp_path / "trace")
    second = _cnm("apply", "-f", a, "--yes")  # default --lock-timeout: 60 s
    assert second.stderr is not None
    waiting = second.stderr.readline()
    assert waiting.startswith(f"waiting for pid {first.pid} (cnm apply"), waiting
    assert "(up to 60 s, --lock-timeout)" in waiting
    killed_at = time.monotonic()
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert time.monotonic() - killed_at < 5
    assert "Apply complete" in err
    assert netns_names() == ["db", "web1", "web2"]


def test_concurrent_applies_of_two_sets_are_serialised_and_both_land(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    other = scenario.write(tmp_path / "other", scenario.OTHER_SET)
    processes = [_cnm("apply", "-f", str(a), "--yes"),
                 _cnm("apply", "-f", str(other), "--yes", "--set", "other")]
    results = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    assert netns_names() == ["db", "lonely", "web1", "web2"]
    assert "No changes" in inproc("plan", "-f", str(a))[1]
    assert "No changes" in inproc("plan", "-f", str(other), "--set", "other")[1]

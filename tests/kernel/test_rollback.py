"""Verified apply with rollback: a failure at any point of a realistic apply restores the
state from before it, exactly; --no-rollback keeps the partial state; a failed
verification rolls back too; a rollback that is itself killed still converges."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import scenario
from faultlib import (
    applied,
    apply_all,
    assert_converged,
    canonical,
    fault_points,
    forked,
    inproc,
    observed,
    ok,
    point_number,
    record_count,
    run,
)

from helpers import REPO, wait_for
from isolation import run_isolated, signals_as_typed

ROLLED_BACK = re.compile(
    r"^cnm: (?:apply|delete) failed (at step \[\d+/\d+\] \w+ \w+/[\w-]+|before the first step"
    r"|at verification): .+; rolled back: (nothing had changed yet|\d+ changes? undone, "
    r"the kernel is as before this apply \(verified\))$"
)


def _points(a: str, b: str, scratch: Path) -> list[str]:
    """The fault points of applying B over A."""
    return run_isolated(fault_points, "apply", "-f", b, "--yes", scratch=scratch, after=(a,))


def _step_of(points: list[str], name: str) -> int:
    point = points[point_number(points, name) - 1]
    return int(point.removeprefix("after step ").split("/")[0])


def _assert_as_before(expected: dict[str, Any], observed_before: Any, plan_dir: str) -> None:
    assert_converged(expected, "after the rollback")
    assert observed() == observed_before, "cnm observes something else than before"
    assert inproc("plan", "-f", plan_dir, "--detailed-exitcode")[0] == 0


def _rolled_back(start: tuple[str, ...], change: tuple[str, ...], fault: str,
                 expected: dict[str, Any]) -> str:
    """Apply `start`, run `change` with `fault`: it must fail, say in its last line that it
    rolled back, and leave exactly the state before (`expected`). That last line."""
    apply_all(*start)
    before = observed()
    code, errors = forked(*change, fault=fault)
    assert code == 1, errors
    last = errors.strip().splitlines()[-1]
    assert ROLLED_BACK.match(last), last
    assert last.startswith(f"cnm: {change[0]} failed "), last  # delete speaks of deletion
    _assert_as_before(expected, before, start[-1])
    return last


def _fail_cycle(a: str, b: str, k: int, expected: dict[str, Any]) -> None:
    last = _rolled_back((a,), ("apply", "-f", b, "--yes"), f"fail@{k}", expected)
    assert f"injected fault at point {k} " in last


def test_failure_at_every_point_rolls_back_to_exactly_the_state_before(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    expected = run_isolated(applied, a)
    points = _points(a, b, tmp_path)
    failures = []
    for k, point in enumerate(points, 1):
        try:
            run_isolated(_fail_cycle, a, b, k, expected)
        except AssertionError as error:
            failures.append(f"fail@{k} ({point}): {str(error)[:3000]}")
    assert not failures, "\n".join(failures)
    record_count("rollback: apply B failed at point k, rolled back to A", len(points))


def _verify_cycle(a: str, b: str, step: int, expected: dict[str, Any]) -> str:
    last = _rolled_back((a,), ("apply", "-f", b, "--yes"), f"skip-step@{step}", expected)
    assert "at verification: the kernel still differs: " in last, last
    return last


def test_failed_verification_rolls_back(tmp_path: Path) -> None:
    """A step that silently did nothing (skip-step) is caught by re-observing."""
    a, b = scenario.dirs(tmp_path)
    expected = run_isolated(applied, a)
    points = _points(a, b, tmp_path)
    for name in ("update Sandbox/web1", "create Endpoint/web3-front",
                 "update Endpoint/web1-front"):
        run_isolated(_verify_cycle, a, b, _step_of(points, name), expected)
    record_count("rollback: verification failures (skipped steps)", 3)


def _no_rollback_cycle(a: str, b: str, k: int, expected_a: dict[str, Any],
                       expected_b: dict[str, Any]) -> None:
    apply_all(a)
    code, errors = forked("apply", "-f", b, "--yes", "--no-rollback", fault=f"fail@{k}")
    assert code == 1
    last = errors.strip().splitlines()[-1]
    assert "; --no-rollback: the partial state is kept" in last, last
    partial = canonical()
    assert partial != expected_a and partial != expected_b
    assert inproc("plan", "-f", b, "--detailed-exitcode")[0] == 2
    apply_all(b)
    assert_converged(expected_b, "apply after --no-rollback")


def test_no_rollback_keeps_the_partial_state_and_apply_then_converges(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    expected_a = run_isolated(applied, a)
    expected_b = run_isolated(applied, a, b)
    points = _points(a, b, tmp_path)
    middle = point_number(points, "create Network/extra")
    run_isolated(_no_rollback_cycle, a, b, middle, expected_a, expected_b)


def _rollback_points(a: str, b: str, fail_at: int, scratch: Path) -> list[str]:
    apply_all(a)
    trace = scratch / "rollback-trace.txt"
    trace.unlink(missing_ok=True)
    result = run("apply", "-f", b, "--yes", fault=f"fail@{fail_at}", trace=trace)
    assert result.returncode == 1, result.stderr
    names = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    return names[fail_at:]  # the points the rollback itself reaches


def _crash_in_rollback_cycle(a: str, fail_at: int, m: int, b: str,
                             expected: dict[str, Any], then_fail: bool) -> None:
    apply_all(a)
    action = "fail" if then_fail else "crash"
    code, errors = forked("apply", "-f", b, "--yes", fault=f"fail@{fail_at},{action}@{m}")
    if then_fail:
        assert code == 1
        assert "; the rollback failed too (" in errors.strip().splitlines()[-1], errors
    else:
        assert code == -9, errors
    ok("apply", "-f", a, "--yes", "--lock-timeout", "0")
    assert_converged(expected, "apply after a broken rollback")


def test_rollback_killed_or_failing_at_every_point_still_converges(tmp_path: Path) -> None:
    """The apply fails in the middle (after its network and endpoint creations began);
    its rollback is then killed, or fails, at each of its own points; `cnm apply` of
    the old manifests still converges exactly."""
    a, b = scenario.dirs(tmp_path)
    expected = run_isolated(applied, a)
    all_points = _points(a, b, tmp_path)
    fail_at = point_number(all_points, "Endpoint/web1-extra: veth pair created, not yet labelled")
    points = run_isolated(_rollback_points, a, b, fail_at, tmp_path)
    assert len(points) >= 8, points
    failures = []
    for offset, point in enumerate(points, 1):
        for then_fail in (False, True):
            try:
                run_isolated(_crash_in_rollback_cycle, a, fail_at, fail_at + offset, b,
                             expected, then_fail)
            except AssertionError as error:
                failures.append(f"{'fail' if then_fail else 'crash'} at rollback point "
                                f"{offset} ({point}): {str(error)[:2000]}")
    assert not failures, "\n".join(failures)
    record_count("rollback: rollback itself killed or failing at point k", 2 * len(points))


def _interrupted_cycle(a: str, b: str, expected: dict[str, Any], scratch: Path,
                       hang_at: int) -> None:
    apply_all(a)
    before = observed()
    trace = scratch / "hang-trace.txt"
    trace.unlink(missing_ok=True)
    env = {**os.environ, "CNM_FAULT": f"hang@{hang_at}", "CNM_FAULT_TRACE": str(trace)}
    process = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "-f", b, "--yes"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=signals_as_typed)
    assert wait_for(lambda: trace.exists() and len(trace.read_text().splitlines()) >= hang_at,
                    30)
    os.kill(process.pid, signal.SIGINT)  # Ctrl-C in the middle of the apply
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    last = err.strip().splitlines()[-1]
    assert ROLLED_BACK.match(last) and ": interrupted; rolled back: " in last, last
    _assert_as_before(expected, before, a)


def test_ctrl_c_in_the_middle_rolls_back(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    expected = run_isolated(applied, a)
    points = _points(a, b, tmp_path)
    hang_at = point_number(points, "Network/extra: bridge created, not yet labelled")
    run_isolated(_interrupted_cycle, a, b, expected, tmp_path, hang_at)


def _failed_delete_cycle(a: str, b: str, k: int, expected: dict[str, Any]) -> None:
    _rolled_back((a, b), ("delete", "-f", b, "--yes"), f"fail@{k}", expected)


def test_a_failed_delete_rolls_back_too(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    expected = run_isolated(applied, a, b)
    for k in (3, 6, 9):
        run_isolated(_failed_delete_cycle, a, b, k, expected)
    record_count("rollback: failed deletes", 3)

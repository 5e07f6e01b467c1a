"""Crash-consistency: kill -9 after every fault point of a realistic apply (and delete),
then run cnm again and compare the whole kernel with the state a clean run reaches.

Fault points (reconciler/faults.py) sit after every plan step and inside every
step that makes more than one kernel change (a link created but not labelled,
a namespace without its files, ...). For each point k, in a fresh pair of
namespaces: reach the starting state, run the change with CNM_FAULT=crash@k
(the process SIGKILLs itself there), then run cnm again and check:

* the exact expected state (`ip -j` of every namespace, /etc/netns files);
* an empty re-plan;
* no leaked link (cnm's group without a label), namespace, file or temp file;
* no address held twice;
* the lock of the killed process did not block (`--lock-timeout 0`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import scenario
from faultlib import (
    applied,
    apply_all,
    assert_converged,
    fault_points,
    forked,
    inproc,
    ok,
    record_count,
    resolver_diagnosis,
)

from isolation import run_isolated


def _check_invariants(then: tuple[str, ...], expected: dict[str, Any]) -> None:
    assert_converged(expected, "after the crash and a second run")
    if then[0] == "apply":
        code, out, _ = inproc("plan", *then[1:3], "--detailed-exitcode")
        assert code == 0, f"re-plan is not empty:\n{out}\n{resolver_diagnosis()}"
        _, out, err = inproc(*then)
        assert "No changes" in out and "removed" not in err, "a third run still changed things"


def _crash_cycle(
    setup: tuple[str, ...], change: tuple[str, ...], k: int,
    then: tuple[str, ...], expected: dict[str, Any],
) -> None:
    apply_all(*setup)
    crashed, errors = forked(*change, "--lock-timeout", "0", fault=f"crash@{k}")
    assert crashed == -9, f"expected SIGKILL at point {k}, got exit {crashed}: {errors}"
    ok(*then, "--lock-timeout", "0")  # the dead process's lock must not block
    _check_invariants(then, expected)


def _matrix(
    name: str, tmp_path: Path, setup: tuple[str, ...], change: tuple[str, ...],
    then: tuple[str, ...], expected_after: tuple[str, ...],
) -> int:
    """setup and expected_after: manifest directories applied in turn, to reach the
    starting state and the state the change then converges to."""
    expected = run_isolated(applied, *expected_after)
    points = run_isolated(fault_points, *change, scratch=tmp_path, after=setup)
    assert len(points) >= 10, points
    failures = []
    for k, point in enumerate(points, 1):
        try:
            run_isolated(_crash_cycle, setup, change, k, then, expected)
        except AssertionError as error:
            failures.append(f"crash@{k} ({point}): {str(error)[:3000]}")
    assert not failures, f"{len(failures)} of {len(points)} crash points failed:\n" + "\n".join(
        failures
    )
    record_count(name, len(points))
    return len(points)


def test_apply_killed_at_every_point_then_applied_again_converges(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    apply_b = ("apply", "-f", b, "--yes")
    _matrix("crash: apply B killed, apply B again", tmp_path, (a,), apply_b, apply_b, (a, b))


def test_apply_killed_at_every_point_then_manifests_reverted_leaves_no_debris(
    tmp_path: Path,
) -> None:
    """The user gives up on B after the crash and applies A again: whatever B had half-made
    (an unlabelled bridge or veth nobody wants any more) must go."""
    a, b = scenario.dirs(tmp_path)
    apply_a, apply_b = ("apply", "-f", a, "--yes"), ("apply", "-f", b, "--yes")
    _matrix("crash: apply B killed, apply A again", tmp_path, (a,), apply_b, apply_a, (a,))


def test_apply_from_scratch_killed_at_every_point_converges(tmp_path: Path) -> None:
    a, _ = scenario.dirs(tmp_path)
    apply_a = ("apply", "-f", a, "--yes")
    _matrix("crash: apply A from scratch killed, apply A again", tmp_path, (), apply_a, apply_a,
            (a,))


def test_delete_killed_at_every_point_then_deleted_again_leaves_nothing(tmp_path: Path) -> None:
    a, b = scenario.dirs(tmp_path)
    delete_b = ("delete", "-f", b, "--yes")
    _matrix("crash: delete killed, delete again", tmp_path, (a, b), delete_b, delete_b, ())

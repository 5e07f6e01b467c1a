"""The fault-injection hook: inert unless CNM_FAULT is set, exact when it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import faults


@pytest.fixture(autouse=True)
def _fresh_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    monkeypatch.delenv(faults.TRACE_ENV, raising=False)
    faults.reset()


def test_points_do_nothing_without_the_variable() -> None:
    for number in range(100):
        faults.point(f"p{number}")
        assert not faults.skip_step(number + 1)


def test_fail_at_the_requested_point_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.FAULT_ENV, "fail@3")
    faults.point("one")
    faults.point("two")
    with pytest.raises(faults.InjectedFault, match=r"point 3 \(three\)"):
        faults.point("three")
    faults.point("four")


def test_trace_lists_every_point_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    monkeypatch.setenv(faults.TRACE_ENV, str(trace))
    for name in ("a", "b", "c"):
        faults.point(name)
    assert trace.read_text() == "1 a\n2 b\n3 c\n"


def test_skip_step_is_by_plan_step_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.FAULT_ENV, "skip-step@2,fail@9")
    assert [faults.skip_step(n) for n in (1, 2, 3)] == [False, True, False]
    assert not faults.skip_step(2)  # only once: a rollback after it runs every step
    assert faults.parse("skip-step@2,fail@9") == {-2: "skip-step", 9: "fail"}


@pytest.mark.parametrize("spec", ["crash", "crash@0", "explode@1", "fail@x", "fail@-1"])
def test_malformed_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="CNM_FAULT"):
        faults.parse(spec)

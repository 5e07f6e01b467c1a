"""Saved plans: written, read back, replayed exactly; refused when the kernel changed since."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler import savedplan
from reconciler.cli import main
from reconciler.engine import compute_plan
from reconciler.loader import load
from reconciler.render import render_text
from reconciler.state import Resource, ResourceKey, State

CASE = Path(__file__).resolve().parents[1] / "cases" / "prune-and-drift"


def _observed() -> State:
    return State.from_json(json.loads((CASE / "observed.json").read_text()))


def _saved(tmp_path: Path) -> tuple[Path, str]:
    planned = compute_plan(load([str(CASE / "manifests")]), _observed())
    path = tmp_path / "plan.json"
    savedplan.write_saved_plan(str(path), planned.plan, planned.desired, planned.observed)
    return path, render_text(planned.plan)


def _with(state: State, **occupied: str) -> State:
    return replace(state, occupied={**state.occupied, **occupied})


def test_replay_on_the_same_kernel_gives_the_same_plan(tmp_path: Path) -> None:
    path, text = _saved(tmp_path)
    saved = savedplan.read_saved_plan(str(path))
    assert render_text(savedplan.replay(saved, _observed())) == text


def test_saved_plan_file_is_deterministic(tmp_path: Path) -> None:
    first, _ = _saved(tmp_path)
    content = first.read_text()
    second, _ = _saved(tmp_path)
    assert second.read_text() == content
    assert json.loads(content)["observed_digest"].startswith("sha256:")


def test_a_changed_owned_object_makes_the_plan_stale(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    observed = _observed()
    network = observed.get(ResourceKey("Network", "frontend"))
    assert network is not None
    changed = Resource(network.key, network.set_name, {**network.attrs, "mtu": 9000})
    drifted = State(observed.set_name, {**observed.resources, network.key: changed},
                    observed.occupied, observed.orphans)
    with pytest.raises(savedplan.StalePlanError, match=r"stale.*Network/frontend mtu changed"):
        savedplan.replay(savedplan.read_saved_plan(str(path)), drifted)


def test_a_vanished_object_makes_the_plan_stale(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    observed = _observed()
    key = ResourceKey("Endpoint", "old")
    gone = State(observed.set_name, {k: r for k, r in observed.resources.items() if k != key},
                 observed.occupied, observed.orphans)
    with pytest.raises(savedplan.StalePlanError, match="Endpoint/old disappeared"):
        savedplan.replay(savedplan.read_saved_plan(str(path)), gone)


def test_unrelated_foreign_links_do_not_make_it_stale(tmp_path: Path) -> None:
    path, text = _saved(tmp_path)
    busy = _with(_observed(), **{"link:vethdocker0": "link vethdocker0 (not owned by cnm)"})
    assert render_text(savedplan.replay(savedplan.read_saved_plan(str(path)), busy)) == text


def test_a_foreign_object_taking_a_planned_name_makes_it_stale(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    squatted = _with(_observed(), **{"netns:web1": "netns web1 (not owned by cnm)"})
    with pytest.raises(savedplan.StalePlanError, match="netns web1 is now"):
        savedplan.replay(savedplan.read_saved_plan(str(path)), squatted)


def test_edited_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    data = json.loads(path.read_text())
    data["observed"]["resources"][0]["attrs"]["mtu"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(savedplan.SavedPlanError, match="does not match its digest"):
        savedplan.read_saved_plan(str(path))
    path.write_text('{"format_version": "1.0", "actions": []}')
    with pytest.raises(savedplan.SavedPlanError, match="not a saved plan"):
        savedplan.read_saved_plan(str(path))
    path.write_text("{")
    with pytest.raises(savedplan.SavedPlanError, match="cannot read"):
        savedplan.read_saved_plan(str(path))


def test_edited_plan_document_is_refused(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    data = json.loads(path.read_text())
    data["plan"]["actions"] = []
    path.write_text(json.dumps(data))
    with pytest.raises(savedplan.SavedPlanError, match="different plan"):
        savedplan.replay(savedplan.read_saved_plan(str(path)), _observed())


def test_plan_out_offline_writes_a_saved_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    out = tmp_path / "plan.json"
    code = main(["plan", "-f", str(CASE / "manifests"), "--observed", str(CASE / "observed.json"),
                 "-out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and f"cnm apply {out}" in captured.err
    assert captured.out == (CASE / "expected.txt").read_text()
    saved = savedplan.read_saved_plan(str(out))
    assert render_text(savedplan.replay(saved, _observed())) == captured.out


def test_apply_needs_exactly_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply"]) == 1
    assert "give -f PATH" in capsys.readouterr().err
    assert main(["apply", "plan.json", "-f", "x"]) == 1
    assert "not both" in capsys.readouterr().err

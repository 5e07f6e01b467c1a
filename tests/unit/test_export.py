"""`cnm export`: observed state -> manifests that reproduce it on an empty host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.desired import build_desired
from reconciler.export import export_state
from reconciler.loader import load, load_text
from reconciler.plan import make_plan
from reconciler.render import render_text
from reconciler.state import State

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "examples" / "quickstart",
    ROOT / "manifests" / "examples" / "reference.yaml",
    *sorted(p / "manifests" for p in (ROOT / "tests" / "cases").iterdir() if p.is_dir()),
]


def _on_empty_host(text: str, set_name: str = "default") -> State:
    return build_desired(load_text(text, "<export>"), set_name, State(set_name))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_export_of_what_apply_makes_reproduces_it(source: Path) -> None:
    kernel = build_desired(load([str(source)]), "default", State("default"))
    exported = export_state(kernel)
    assert exported.warnings == []
    plan = make_plan(_on_empty_host(exported.yaml("default")), kernel)
    assert plan.empty, render_text(plan)


def test_export_of_a_real_snapshot_round_trips() -> None:
    case = ROOT / "tests" / "cases" / "no-changes"
    observed = State.from_json(json.loads((case / "observed.json").read_text()))
    exported = export_state(observed, with_mac=True)
    assert exported.warnings == []
    assert make_plan(_on_empty_host(exported.yaml("default")), observed).empty
    text = exported.yaml("default")
    assert "macAddress: 02:42:0a:59:00:0a" in text
    assert "labels" not in text  # the kernel does not keep them


def test_only_addresses_allocation_would_not_give_back_are_pinned() -> None:
    kernel = build_desired(load([str(ROOT / "examples" / "quickstart")]), "default",
                           State("default"))
    text = export_state(kernel).yaml("default")
    docs = {(d.kind, d.metadata.name): d for d in load_text(text).objects()}
    assert str(docs[("Endpoint", "web1-front")].spec.ipv4_address) == "10.89.0.10"  # static
    assert str(docs[("Endpoint", "web2-front")].spec.ipv4_address) == "10.89.0.128"  # ipRange
    assert docs[("Endpoint", "web2-front")].spec.ipv6_address is None  # lowest free anyway
    assert docs[("Endpoint", "web1-front")].spec.aliases == ["www"]
    assert docs[("Sandbox", "web1")].spec.domainname == "example.org"


def test_drift_that_manifests_cannot_express_is_a_warning() -> None:
    case = ROOT / "tests" / "cases" / "no-changes"
    data = json.loads((case / "observed.json").read_text())
    for resource in data["resources"]:
        if resource["kind"] == "Network":
            resource["attrs"]["up"] = False
    exported = export_state(State.from_json(data))
    assert any("Network/frontend: up is false in the kernel" in w for w in exported.warnings)


def test_empty_set_exports_a_comment_only() -> None:
    text = export_state(State("default")).yaml("default")
    assert load_text(text).is_empty() and "owns no objects" in text

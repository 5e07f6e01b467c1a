"""Typed attribute values: address lists are tuples, a veth pair's two MTUs an `MtuPair`
and firewall drift a `Drift` inside cnm; plans, JSON documents and saved states show
them as they always did ("a, b", "1500/9000", "(no rules)"), and read them back typed."""

from __future__ import annotations

import json

from reconciler.diff import Change
from reconciler.plan import Action, Plan
from reconciler.render import format_change, plan_document, render_text
from reconciler.state import (
    Drift,
    DriftReason,
    MtuPair,
    Resource,
    ResourceKey,
    State,
    external,
    internal,
    thaw,
)

KEY = ResourceKey("Endpoint", "web")
TYPED = {
    "ipv4": ("10.0.0.2/24", "10.0.0.9/24"),
    "ipv6": ("fd00::2/64",),
    "gateway4": ("10.0.0.1", "10.0.0.254"),
    "gateway6": None,
    "mtu": MtuPair(1500, 9000),
    "veth": "cnm0123456789",
    "internal": Drift(DriftReason.NO_RULES),
}
SHOWN = {
    "ipv4": "10.0.0.2/24, 10.0.0.9/24",
    "ipv6": "fd00::2/64",
    "gateway4": "10.0.0.1, 10.0.0.254",
    "gateway6": None,
    "mtu": "1500/9000",
    "veth": "cnm0123456789",
    "internal": "(no rules)",
}


def test_json_shows_the_text_forms_and_reads_them_back_typed() -> None:
    resource = Resource(KEY, "default", TYPED)
    document = resource.to_json()
    assert document["attrs"] == SHOWN
    state = State("default", {KEY: resource})
    again = State.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state and again.get(KEY) == resource
    assert again.to_json() == state.to_json()


def test_the_json_form_reads_back_as_the_value() -> None:
    for name, value in TYPED.items():
        assert thaw(external(name, value)) == SHOWN[name]
        assert internal(name, SHOWN[name]) == value
    assert internal("mtu", 1500) == 1500 and internal("ipv4", "") is None


def test_plans_show_the_text_forms() -> None:
    old = Resource(KEY, "default", TYPED)
    new = Resource(KEY, "default", {**TYPED, "ipv4": ("10.0.0.2/24",), "mtu": 1500,
                                    "gateway4": ("10.0.0.1",)})
    changes = (Change("gateway4", old.get("gateway4"), new.get("gateway4")),
               Change("ipv4", old.get("ipv4"), new.get("ipv4")),
               Change("mtu", old.get("mtu"), new.get("mtu")))
    assert [format_change(c) for c in changes] == [
        "gateway4: 10.0.0.1, 10.0.0.254 -> 10.0.0.1",
        "ipv4: 10.0.0.2/24, 10.0.0.9/24 -> 10.0.0.2/24",
        "mtu: 1500/9000 -> 1500",
    ]
    plan = Plan("default", (Action("update", KEY, changes, (), new, old),))
    assert "  ~ Endpoint/web  gateway4: 10.0.0.1, 10.0.0.254 -> 10.0.0.1" in render_text(plan)
    actions = plan_document(plan)["actions"]
    assert isinstance(actions, list)
    assert actions[0]["changes"] == [
        {"path": "gateway4", "old": "10.0.0.1, 10.0.0.254", "new": "10.0.0.1"},
        {"path": "ipv4", "old": "10.0.0.2/24, 10.0.0.9/24", "new": "10.0.0.2/24"},
        {"path": "mtu", "old": "1500/9000", "new": 1500},
    ]

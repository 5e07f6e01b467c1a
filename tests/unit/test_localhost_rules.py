"""Published ports on the host's 127.0.0.1, as planning sees them: the `localhost`
rules of a network, their drift, and what a kernel made before them plans."""

from __future__ import annotations

import json

from test_firewall_rules import FakeNft, _applied, _links_only, _localnet, _observed, _world

from reconciler import firewall
from reconciler.desired import build_desired
from reconciler.plan import make_plan
from reconciler.render import render_text
from reconciler.state import Drift, DriftReason, State


def _items(desired: State) -> dict[str, object]:
    return {f"{key} {item}": rules for (key, item), rules in firewall.wanted_rules(desired).items()
            if item == "localhost"}


def test_every_ipv4_network_that_is_not_internal_answers_on_loopback() -> None:
    desired = build_desired(_world(), "default", State("default"))
    attrs = {n.key.name: (n.get("localhost"), n.get("route_localnet"))
             for n in desired.of_kind("Network")}
    assert attrs == {"front": (True, True), "back": (False, False), "quiet": (True, True)}
    items = _items(desired)
    assert items["Network/back localhost"] == []
    front = items["Network/front localhost"]
    assert isinstance(front, list)
    assert sorted(r.chain for r in front) == ["output", "postrouting", "prerouting"]
    assert all(r.comment == "cnm/v1 set=default Network/front localhost" for r in front)
    text = {r.chain: json.loads(r.expr) for r in front}
    assert {"masquerade": None} in text["postrouting"]
    assert {"drop": None} in text["prerouting"]
    assert {"jump": {"target": "ports"}} in text["output"]


def test_a_hand_deleted_localhost_rule_is_drift_that_apply_repairs() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    assert make_plan(desired, _observed(desired, kernel)).empty
    victim = next(r for r in kernel.rules if r.comment and r.comment.endswith("front localhost"))
    kernel.rules.remove(victim)
    observed = _observed(desired, kernel)
    front = observed.get(next(n.key for n in desired.of_kind("Network") if n.key.name == "front"))
    assert front is not None and front.get("localhost") == Drift(DriftReason.RULES_DIFFER)
    assert "localhost: (rules differ) -> true" in render_text(make_plan(desired, observed))
    kernel.apply(firewall.transaction(desired, kernel.ruleset()))
    assert make_plan(desired, _observed(desired, kernel)).empty


def test_a_kernel_made_before_localhost_ports_plans_only_the_additions() -> None:
    """Migration: tables without the localhost rules, bridges with route_localnet off."""
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    kernel.rules = [r for r in kernel.rules if not (r.comment or "").endswith(" localhost")]
    off = {bridge: False for bridge in _localnet(desired)}
    observed = firewall.attach(_links_only(desired), kernel.ruleset(), {4: True, 6: True},
                               {str(e.get("veth")): bool(e.get("hairpin"))
                                for e in desired.of_kind("Endpoint")}, localnet=off)
    plan = make_plan(desired, observed)
    changed = {str(a.key): sorted(c.path for c in a.changes) for a in plan}
    assert changed == {"Network/front": ["localhost", "route_localnet"],
                       "Network/quiet": ["localhost", "route_localnet"]}
    assert all(a.verb == "update" for a in plan)
    kernel.apply(firewall.transaction(desired, kernel.ruleset()))
    assert make_plan(desired, _observed(desired, kernel)).empty

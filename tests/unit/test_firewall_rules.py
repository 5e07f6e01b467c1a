"""Firewall as data: attributes, rule generation, reading rules back, the transaction.

The kernel is played by `FakeNft`, a small in-memory nftables that applies
transactions the way nft does (all or nothing, handles, chains that must
exist, no deleting a chain in use), so every scenario runs without root:
apply -> observe -> plan must be empty; drift by hand -> plan shows it ->
the transaction repairs it.
"""

from __future__ import annotations

import ast
import copy
import importlib
import ipaddress
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler import firewall, savedplan
from reconciler.desired import build_desired
from reconciler.errors import ConflictError, ManifestError
from reconciler.firewall import PortMap, Rule, Ruleset, Transaction
from reconciler.loader import load_text
from reconciler.manifest_set import Manifests
from reconciler.model import PortMapping
from reconciler.plan import BRIDGE_PORTS, FIREWALL, PHASES, make_plan
from reconciler.render import render_json, render_markdown, render_text
from reconciler.state import DRIFT_ATTRS, Drift, DriftReason, Resource, State

from builders import endpoint, manifests, network, sandbox


class FakeNft:
    """cnm's two tables, changed only by whole transactions, as the kernel would."""

    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.chains: dict[tuple[str, str], firewall.ChainSpec | None] = {}
        self.rules: list[firewall.ObservedRule] = []
        self.handle = 0
        self.transactions = 0

    def ruleset(self) -> Ruleset:
        return Ruleset(frozenset(self.tables), dict(self.chains), tuple(self.rules))

    def apply(self, tx: Transaction) -> None:
        saved = copy.deepcopy((self.tables, self.chains, self.rules, self.handle))
        try:
            for command in tx.commands:
                self._run(command)
        except Exception:
            self.tables, self.chains, self.rules, self.handle = saved
            raise
        if tx.commands:
            self.transactions += 1

    def _run(self, command: dict[str, Any]) -> None:
        (verb, body), = command.items()
        (what, spec), = body.items()
        family = spec["family"]
        if (verb, what) == ("add", "table"):
            self.tables.add(family)
        elif (verb, what) == ("delete", "table"):
            assert family in self.tables, "no such table"
            self.tables.discard(family)
            self.chains = {k: v for k, v in self.chains.items() if k[0] != family}
            self.rules = [r for r in self.rules if r.family != family]
        elif (verb, what) == ("add", "chain"):
            assert family in self.tables, "no such table"
            hook = ((spec["type"], spec["hook"], spec["prio"], spec["policy"])
                    if "hook" in spec else None)
            key = (family, spec["name"])
            assert self.chains.get(key, hook) == hook, "chain exists with another hook"
            self.chains[key] = hook
        elif (verb, what) == ("delete", "chain"):
            key = (family, spec["name"])
            assert key in self.chains, "no such chain"
            assert not any((r.family, r.chain) == key for r in self.rules), "chain not empty"
            target = json.dumps({"jump": {"target": spec["name"]}}, separators=(",", ":"))
            assert not any(r.family == family and target[1:-1] in r.expr for r in self.rules), \
                "chain in use"
            del self.chains[key]
        elif (verb, what) == ("add", "rule"):
            assert (family, spec["chain"]) in self.chains, f"no chain {spec['chain']}"
            for expr in spec["expr"]:
                if "jump" in expr:
                    assert (family, expr["jump"]["target"]) in self.chains, "no jump target"
            self.handle += 1
            self.rules.append(firewall.ObservedRule(
                family, spec["chain"], self.handle, spec.get("comment"),
                firewall.canonical(spec["expr"]),
            ))
        elif (verb, what) == ("delete", "rule"):
            before = len(self.rules)
            self.rules = [r for r in self.rules
                          if not (r.family == family and r.handle == spec["handle"])]
            assert len(self.rules) == before - 1, "no such rule"
        else:
            raise AssertionError(f"unexpected command {command}")

    # drift by hand
    def add_foreign(self, family: str, chain: str, comment: str | None, expr: list[Any]) -> None:
        self.handle += 1
        self.rules.append(firewall.ObservedRule(family, chain, self.handle, comment,
                                                firewall.canonical(expr)))


FORWARDING = {4: True, 6: True}


def _world(
    ports: tuple[dict[str, Any], ...] = ({"containerPort": 80, "hostPort": 8080},),
    **front: Any,
) -> Manifests:
    return manifests(
        network("front", "10.89.0.0/24", "fd00:89::/64", **front),
        network("back", "10.90.0.0/24", internal=True),
        network("quiet", "10.91.0.0/24", icc=False),
        sandbox("web"), sandbox("db"), sandbox("q1"), sandbox("q2"),
        endpoint("web-front", "front", "web", ports=list(ports)),
        endpoint("db-back", "back", "db"),
        endpoint("q1-quiet", "quiet", "q1"),
        endpoint("q2-quiet", "quiet", "q2"),
    )


def _links_only(state: State) -> State:
    """What observation sees before reading the firewall: the links, no firewall attributes."""
    return State(state.set_name, {
        r.key: Resource(r.key, r.set_name,
                        {k: v for k, v in r.attrs.items() if k not in firewall.FIREWALL_ATTRS})
        for r in state
    })


def _hairpin(state: State) -> dict[str, bool]:
    """Bridge ports as the kernel shows them after the apply: as desired."""
    return {str(e.get("veth")): bool(e.get("hairpin")) for e in state.of_kind("Endpoint")}


def _localnet(state: State) -> dict[str, bool]:
    """Bridges' route_localnet as the kernel shows them after the apply: as desired."""
    return {str(n.get("bridge")): bool(n.get("route_localnet")) for n in state.of_kind("Network")}


def _observed(desired: State, kernel: FakeNft) -> State:
    return firewall.attach(_links_only(desired), kernel.ruleset(), FORWARDING, _hairpin(desired),
                           localnet=_localnet(desired))


def _applied(m: Manifests, kernel: FakeNft, set_name: str = "default") -> State:
    desired = build_desired(m, set_name, State(set_name))
    kernel.apply(firewall.transaction(desired, kernel.ruleset()))
    return desired


def _plan_text(desired: State, kernel: FakeNft) -> str:
    return render_text(make_plan(desired, _observed(desired, kernel)))


# --- attributes ------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "text"), [
    ({"containerPort": 80, "hostPort": 8080}, "8080->80/tcp"),
    ({"containerPort": 53, "hostPort": 5353, "protocol": "udp"}, "5353->53/udp"),
    ({"containerPort": 80, "hostPort": 8080, "hostIP": "0.0.0.0"}, "0.0.0.0:8080->80/tcp"),
    ({"containerPort": 80, "hostPort": 8080, "hostIP": "192.0.2.1"}, "192.0.2.1:8080->80/tcp"),
    ({"containerPort": 80, "hostPort": 8080, "hostIP": "::"}, "[::]:8080->80/tcp"),
    ({"containerPort": 80, "hostPort": 8080, "hostIP": "2001:DB8:0::1"},
     "[2001:db8::1]:8080->80/tcp"),
])
def test_port_text_is_canonical_and_parses_back(spec: dict[str, Any], text: str) -> None:
    port = PortMap.of(PortMapping.model_validate(spec))
    assert port.text() == text
    assert PortMap.parse(text) == port


@pytest.mark.parametrize("text", [
    "8080->80", "8080->80/sctp", "0->80/tcp", "8080->70000/tcp", "[::1:8080->80/tcp",
    "2001:db8::1:8080->80/tcp", "[2001:0db8::1]:8080->80/tcp", "x:8080->80/tcp", "",
])
def test_texts_cnm_never_writes_do_not_parse(text: str) -> None:
    assert PortMap.parse(text) is None


def test_endpoint_ports_are_sorted_and_unique() -> None:
    ports = [PortMapping(container_port=80, host_port=9090),
             PortMapping(container_port=80, host_port=8080),
             PortMapping(container_port=80, host_port=8080)]
    assert firewall.endpoint_attrs(ports) == {"ports": ("8080->80/tcp", "9090->80/tcp"),
                                              "hairpin": True}
    assert firewall.endpoint_attrs([]) == {"ports": (), "hairpin": False}


def test_network_attributes() -> None:
    desired = build_desired(_world(), "default", State("default"))
    front = desired.get(network("front").key)
    back = desired.get(network("back").key)
    quiet = desired.get(network("quiet").key)
    assert front is not None and back is not None and quiet is not None
    assert {k: front.get(k) for k in ("internal", "icc", "masquerade")} == {
        "internal": False, "icc": True, "masquerade": True}
    assert front.get("forwarding.ipv4") is True and front.get("forwarding.ipv6") is True
    # internal: no masquerade, and no forwarding needed
    assert back.get("internal") is True and back.get("masquerade") is False
    assert "forwarding.ipv4" not in back.attrs
    assert quiet.get("icc") is False and "forwarding.ipv6" not in quiet.attrs


# --- the rules ----------------------------------------------------------------------


def _rules(state: State) -> dict[tuple[str, str], list[Rule] | None]:
    return {(str(key), item): rules for (key, item), rules in firewall.wanted_rules(state).items()}


def test_published_port_is_one_dnat_rule_per_family() -> None:
    desired = build_desired(_world(), "default", State("default"))
    rules = _rules(desired)[("Endpoint/web-front", "port 8080->80/tcp")]
    assert rules is not None
    assert [(r.family, r.chain) for r in rules] == [("inet", "ports"), ("inet", "ports")]
    assert rules[0].comment == "cnm/v1 set=default Endpoint/web-front port 8080->80/tcp"
    v4, v6 = (json.loads(r.expr) for r in rules)
    assert v4[0] == {"match": {"left": {"meta": {"key": "nfproto"}}, "op": "==", "right": "ipv4"}}
    assert v4[2] == {"dnat": {"addr": "10.89.0.2", "family": "ip", "port": 80}}
    assert v6[2] == {"dnat": {"addr": "fd00:89::2", "family": "ip6", "port": 80}}


def test_host_ip_binds_the_rule_to_that_address() -> None:
    m = _world(ports=({"containerPort": 80, "hostPort": 8080, "hostIP": "192.0.2.1"},))
    desired = build_desired(m, "default", State("default"))
    rules = _rules(desired)[("Endpoint/web-front", "port 192.0.2.1:8080->80/tcp")]
    assert rules is not None and len(rules) == 1
    assert json.loads(rules[0].expr)[0]["match"]["left"] == {
        "payload": {"field": "daddr", "protocol": "ip"}}


def test_network_items() -> None:
    desired = build_desired(_world(), "default", State("default"))
    rules = _rules(desired)
    chains = {item: sorted((r.family, r.chain) for r in rs or ()) for item, rs in rules.items()}
    # not internal: inbound drop + hairpin masquerade per subnet; masquerade per subnet
    assert chains[("Network/front", "isolation")] == [
        ("inet", "forward"), ("inet", "postrouting"), ("inet", "postrouting")]
    assert chains[("Network/front", "masquerade")] == [
        ("inet", "postrouting"), ("inet", "postrouting")]
    assert chains[("Network/front", "icc")] == []
    # internal: inbound and outbound drop, no masquerade
    assert chains[("Network/back", "isolation")] == [("inet", "forward"), ("inet", "forward")]
    assert chains[("Network/back", "masquerade")] == []
    # icc off: same-bridge drop (inet) and the ports' frames (bridge family)
    assert chains[("Network/quiet", "icc")] == [("bridge", "forward"), ("inet", "forward")]
    bridge_rule = next(r for r in rules[("Network/quiet", "icc")] or () if r.family == "bridge")
    veths = sorted(str(e.get("veth")) for e in desired.of_kind("Endpoint")
                   if e.get("network") == "quiet")
    assert json.loads(bridge_rule.expr)[0]["match"]["right"] == {"set": veths}


def test_rule_text_never_contains_unvalidated_text() -> None:
    """Rules are JSON trees; every string in them is a fixed keyword, a name, or an address."""
    desired = build_desired(_world(), "default", State("default"))
    for rules in firewall.wanted_rules(desired).values():
        for rule in rules or ():
            assert "\n" not in rule.expr and ";" not in rule.expr


# --- apply, observe, plan -----------------------------------------------------------------


def test_apply_then_observe_plans_nothing() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    assert kernel.transactions == 1
    assert kernel.tables == {"inet", "bridge"}
    assert make_plan(desired, _observed(desired, kernel)).empty
    again = firewall.transaction(desired, kernel.ruleset())
    assert again.empty, again.commands


def test_table_deleted_by_hand_is_drift_and_is_repaired() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    kernel.apply(Transaction(({"delete": {"table": {"family": "inet", "name": "cnm"}}},)))
    text = _plan_text(desired, kernel)
    assert "~ Endpoint/web-front  ports: [] -> [8080->80/tcp]" in text
    assert "~ Network/front" in text and "masquerade: false -> true" in text
    assert "internal: (no rules) -> false" in text
    assert "-/+" not in text and "  + " not in text
    kernel.apply(firewall.transaction(desired, kernel.ruleset()))
    assert make_plan(desired, _observed(desired, kernel)).empty


def test_rule_changed_by_hand_is_drift_and_is_repaired() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    dnat = next(r for r in kernel.rules if r.comment and "port 8080" in r.comment)
    kernel.rules.remove(dnat)
    kernel.add_foreign("inet", "ports", dnat.comment,
                       json.loads(dnat.expr.replace('"port":80', '"port":81')))
    text = _plan_text(desired, kernel)
    assert "ports: [8080->80/tcp (rules differ)] -> [8080->80/tcp]" in text
    tx = firewall.transaction(desired, kernel.ruleset())
    assert (tx.deleted, tx.added) == (1, 1)  # rule level: the other family's rule stays
    kernel.apply(tx)
    assert make_plan(desired, _observed(desired, kernel)).empty


def test_duplicate_rule_is_drift_and_is_removed() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    masq = next(r for r in kernel.rules if r.comment and r.comment.endswith("masquerade"))
    kernel.add_foreign(masq.family, masq.chain, masq.comment, json.loads(masq.expr))
    assert "masquerade: (rules differ) -> true" in _plan_text(desired, kernel)
    tx = firewall.transaction(desired, kernel.ruleset())
    assert (tx.deleted, tx.added) == (1, 0)
    kernel.apply(tx)
    assert make_plan(desired, _observed(desired, kernel)).empty


def test_changed_base_chain_is_rebuilt_with_every_rule() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    other = _applied(manifests(network("o", "10.95.0.0/24")), kernel, "other")
    kernel.chains[("inet", "postrouting")] = ("nat", "postrouting", 100, "drop")
    assert "masquerade: false -> true" in _plan_text(desired, kernel)
    kernel.apply(firewall.transaction(desired, kernel.ruleset()))
    assert kernel.chains[("inet", "postrouting")] == ("nat", "postrouting", 100, "accept")
    assert make_plan(desired, _observed(desired, kernel)).empty
    assert make_plan(other, _observed(other, kernel)).empty, "the other set's rules came back"


def test_port_change_is_an_update_of_the_endpoint_and_touches_only_its_rules() -> None:
    kernel = FakeNft()
    _applied(_world(ports=({"containerPort": 80, "hostPort": 8080},
                           {"containerPort": 53, "hostPort": 5353, "protocol": "udp"})), kernel)
    desired = build_desired(_world(), "default", State("default"))
    plan = make_plan(desired, _observed(desired, kernel))
    assert [(a.verb, str(a.key)) for a in plan] == [("update", "Endpoint/web-front")]
    assert [c.path for c in plan.actions[0].changes] == ["ports"]
    assert [(s.verb, str(s.action.key)) for s in plan.steps()] == [
        ("update", f"{FIREWALL}/default"), ("update", "Endpoint/web-front"),
        ("update", f"{BRIDGE_PORTS}/default")]
    tx = firewall.transaction(desired, kernel.ruleset())
    assert (tx.deleted, tx.added) == (2, 0)
    assert all("delete" in c for c in tx.commands)
    assert {(f.version, f.host_port, f.host_ip) for f in tx.flush} == {(4, 5353, None),
                                                                         (6, 5353, None)}


def test_moved_udp_port_flushes_conntrack_of_that_host_port_only() -> None:
    kernel = FakeNft()
    bound = {"containerPort": 53, "hostPort": 5353, "protocol": "udp", "hostIP": "192.0.2.1"}
    _applied(_world(ports=(bound,)), kernel)
    desired = build_desired(_world(ports=({**bound, "containerPort": 54},)), "default",
                            State("default"))
    tx = firewall.transaction(desired, kernel.ruleset())
    assert [(f.version, f.host_port, f.host_ip) for f in tx.flush] == [(4, 5353, "192.0.2.1")]


def test_endpoint_address_change_rewrites_its_dnat() -> None:
    kernel = FakeNft()
    _applied(_world(), kernel)
    m = _world()
    web = m.endpoints["web-front"]
    moved = web.model_copy(update={"spec": web.spec.model_copy(
        update={"ipv4_address": ipaddress.ip_address("10.89.0.77")})})
    desired = build_desired(
        Manifests.build([(o, m.source_of(o.key)) for o in m.objects() if o is not web]
                        + [(moved, m.source_of(web.key))]), "default", State("default"))
    tx = firewall.transaction(desired, kernel.ruleset())
    assert (tx.deleted, tx.added) == (1, 1)
    assert "10.89.0.77" in json.dumps(tx.commands[-1])


def test_sets_share_the_tables_and_never_touch_each_other() -> None:
    kernel = FakeNft()
    mine = _applied(_world(), kernel)
    theirs = _applied(manifests(network("o", "10.95.0.0/24")), kernel, "other")
    theirs_rules = [r for r in kernel.rules if r.comment and "set=other" in r.comment]
    gone = State("default")
    kernel.apply(firewall.transaction(gone, kernel.ruleset()))
    assert kernel.tables == {"inet"}, "bridge table held only this set's rules"
    assert [r for r in kernel.rules if r.comment and "set=other" in r.comment] == theirs_rules
    assert make_plan(theirs, _observed(theirs, kernel)).empty
    assert not make_plan(mine, _observed(mine, kernel)).empty
    kernel.apply(firewall.transaction(State("other"), kernel.ruleset()))
    assert kernel.tables == set() and kernel.rules == []


def test_foreign_rule_in_cnm_table_survives_and_keeps_the_table() -> None:
    kernel = FakeNft()
    _applied(_world(), kernel)
    kernel.add_foreign("inet", "forward", None, [{"accept": None}])
    kernel.apply(firewall.transaction(State("default"), kernel.ruleset()))
    assert kernel.tables == {"inet"}
    assert [r.comment for r in kernel.rules] == [firewall.TABLE_MARKER] * 3 + [None]


def test_table_of_someone_else_is_a_conflict() -> None:
    kernel = FakeNft()
    kernel.tables.add("inet")
    kernel.chains[("inet", "filter")] = ("filter", "input", 0, "accept")
    kernel.add_foreign("inet", "filter", "theirs", [{"accept": None}])
    desired = build_desired(_world(), "default", State("default"))
    with pytest.raises(ConflictError, match="table inet cnm exists and is not owned by cnm"):
        firewall.transaction(desired, kernel.ruleset())
    observed = _observed(desired, kernel)
    with pytest.raises(ConflictError, match=r"Network/back: nft table inet cnm is taken by "
                                            r"nftables table inet cnm \(not owned by cnm\)"):
        make_plan(desired, observed)


def test_rules_whose_owner_has_no_links_are_pruned() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    # the endpoint's links are gone (deleted by hand) and it left the manifests
    without = State("default", {k: r for k, r in desired.resources.items()
                                if str(k) != "Endpoint/web-front"})
    observed = firewall.attach(_links_only(without), kernel.ruleset(), FORWARDING,
                               _hairpin(without), localnet=_localnet(without))
    ghost = observed.get(endpoint("web-front", "front").key)
    assert ghost is not None and ghost.get("ports") == (
        Drift(DriftReason.RULES_DIFFER, "8080->80/tcp"),)
    plan = make_plan(without, observed)
    assert [(a.verb, str(a.key)) for a in plan] == [("delete", "Endpoint/web-front")]
    kernel.apply(firewall.transaction(without, kernel.ruleset()))
    assert make_plan(without, firewall.attach(_links_only(without), kernel.ruleset(),
                                              FORWARDING, _hairpin(without),
                                              localnet=_localnet(without))).empty


def test_unknown_values_leave_their_rules_alone() -> None:
    """A delete plan keeps what it does not delete as observed, drift included."""
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    masq = [r for r in kernel.rules if r.comment and "front masquerade" in r.comment]
    kernel.rules.remove(masq[0])
    observed = _observed(desired, kernel)
    front = observed.get(network("front").key)
    assert front is not None and front.get("masquerade") == Drift(DriftReason.RULES_DIFFER)
    tx = firewall.transaction(observed, kernel.ruleset())
    assert tx.empty


def test_forwarding_is_shown_and_only_ever_turned_on() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    observed = firewall.attach(_links_only(desired), kernel.ruleset(), {4: False, 6: True},
                               _hairpin(desired), localnet=_localnet(desired))
    text = render_text(make_plan(desired, observed))
    assert "forwarding.ipv4: false -> true" in text
    assert "forwarding.ipv6" not in text


# --- drift as a value -------------------------------------------------------------------


def _drifted() -> tuple[State, State]:
    """(desired, observed) with every kind of drift: a setting without rules, one whose
    rules differ, a published port whose rule was changed by hand."""
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    for rule in [r for r in kernel.rules if r.comment and r.comment.endswith("back isolation")]:
        kernel.rules.remove(rule)
    masq = next(r for r in kernel.rules if r.comment and r.comment.endswith("front masquerade"))
    kernel.add_foreign(masq.family, masq.chain, masq.comment, json.loads(masq.expr))
    dnat = next(r for r in kernel.rules if r.comment and "port 8080" in r.comment)
    kernel.rules.remove(dnat)
    kernel.add_foreign("inet", "ports", dnat.comment,
                       json.loads(dnat.expr.replace('"port":80', '"port":81')))
    return desired, _observed(desired, kernel)


def test_drift_is_a_value_no_desired_value_equals() -> None:
    _, observed = _drifted()
    back, front = observed.get(network("back").key), observed.get(network("front").key)
    web = observed.get(endpoint("web-front", "front").key)
    assert back is not None and back.get("internal") == firewall.NO_RULES
    assert front is not None and front.get("masquerade") == firewall.RULES_DIFFER
    assert web is not None and web.get("ports") == (
        Drift(DriftReason.RULES_DIFFER, "8080->80/tcp"),)
    assert firewall.NO_RULES not in (True, False, None, "(no rules)")


def test_drift_prints_as_its_text_in_every_plan_format() -> None:
    desired, observed = _drifted()
    plan = make_plan(desired, observed)
    text = render_text(plan)
    assert "internal: (no rules) -> true" in text
    assert "masquerade: (rules differ) -> true" in text
    assert "ports: [8080->80/tcp (rules differ)] -> [8080->80/tcp]" in text
    document = json.loads(render_json(plan))
    changes = {(a["name"], c["path"]): c["old"] for a in document["actions"]
               for c in a["changes"]}
    assert changes[("back", "internal")] == "(no rules)"
    assert changes[("front", "masquerade")] == "(rules differ)"
    assert changes[("web-front", "ports")] == ["8080->80/tcp (rules differ)"]
    assert "| `ports` | `[8080->80/tcp (rules differ)]` | `[8080->80/tcp]` |" in \
        render_markdown(plan)


def test_drift_round_trips_through_state_json_as_its_text() -> None:
    _, observed = _drifted()
    data = json.loads(json.dumps(observed.to_json()))
    attrs = {r["name"]: r["attrs"] for r in data["resources"]}
    assert attrs["back"]["internal"] == "(no rules)"
    assert attrs["front"]["masquerade"] == "(rules differ)"
    assert attrs["web-front"]["ports"] == ["8080->80/tcp (rules differ)"]
    assert State.from_json(data) == observed


def test_only_firewall_attributes_read_drift_text_back() -> None:
    hosts = "127.0.0.1 localhost (rules differ)"
    state = State("default", {sandbox("web").key: Resource(
        sandbox("web").key, "default", {"files.hosts": hosts, "netns": "(no rules)"})})
    again = State.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state
    assert DRIFT_ATTRS <= firewall.FIREWALL_ATTRS


def test_saved_plan_keeps_drift_and_its_digest(tmp_path: Any) -> None:
    desired, observed = _drifted()
    plan = make_plan(desired, observed)
    path = tmp_path / "plan.json"
    savedplan.write_saved_plan(str(path), plan, desired, observed)
    saved = savedplan.read_saved_plan(str(path))
    assert saved.observed == savedplan.relevant_state(observed, desired)
    assert render_text(savedplan.replay(saved, observed)) == render_text(plan)


def test_drift_pickles_and_stays_immutable() -> None:
    drift = Drift(DriftReason.RULES_DIFFER, "8080->80/tcp")
    assert pickle.loads(pickle.dumps(drift)) == drift
    assert hash(drift) == hash(Drift(DriftReason.RULES_DIFFER, "8080->80/tcp"))
    with pytest.raises(AttributeError):
        drift.subject = "9090->90/tcp"  # type: ignore[misc]


# --- the package -------------------------------------------------------------------------


def test_every_name_of_the_package_comes_from_the_module_it_names() -> None:
    homes = firewall._HOMES
    assert sorted(firewall.__all__) == sorted(homes)
    for name, home in homes.items():
        assert getattr(firewall, name) is getattr(
            importlib.import_module(f"reconciler.firewall.{home}"), name)
    init = Path(firewall.__file__).read_text()
    typed = {alias.name: node.module.rsplit(".", 1)[1]
             for node in ast.walk(ast.parse(init))
             if isinstance(node, ast.ImportFrom) and node.module
             and node.module.startswith("reconciler.firewall.")
             for alias in node.names}
    assert typed == homes, "the TYPE_CHECKING imports and _MODULES disagree"


def test_the_package_loads_a_module_only_when_one_of_its_names_is_used() -> None:
    code = ("import sys; from reconciler import firewall; firewall.{}; "
            "print(sorted(m for m in sys.modules if m.startswith('reconciler.firewall.')))")

    def loaded(name: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code.format(name)], check=True,
                             capture_output=True, text=True).stdout
        return [m.removeprefix("reconciler.firewall.") for m in ast.literal_eval(out)]
    assert loaded("TABLE") == ["expr", "table"]
    assert loaded("network_attrs") == ["attributes", "expr", "ports", "table"]


# --- phases ---------------------------------------------------------------------------


def test_firewall_phase_runs_before_every_delete_and_create() -> None:
    assert PHASES[0] == ("update", FIREWALL)
    kernel = FakeNft()
    before = _applied(_world(), kernel)
    plan = make_plan(State("default"), _observed(before, kernel))
    steps = [(s.verb, s.action.key.kind) for s in plan.steps()]
    assert steps[0] == ("update", FIREWALL)
    assert steps.count(("update", FIREWALL)) == 1
    assert all(verb == "delete" for verb, _ in steps[1:])


def test_sandbox_only_changes_need_no_firewall_step() -> None:
    m = manifests(sandbox("alone"))
    plan = make_plan(build_desired(m, "default", State("default")), State("default"))
    assert [s.action.key.kind for s in plan.steps()] == ["Sandbox"]


# --- validation -------------------------------------------------------------------------

_BASE = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: n}
spec: {internal: INTERNAL, ipam: [{subnet: 10.1.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: s}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec:
  network: n
  sandbox: s
  ports:
    - PORT
"""


def _problems(port: str, internal: bool = False) -> list[str]:
    text = _BASE.replace("PORT", port).replace("INTERNAL", str(internal).lower())
    with pytest.raises(ManifestError) as info:
        load_text(textwrap.dedent(text), "m.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(("port", "message"), [
    ("{containerPort: 80, hostPort: 70000}",
     "m.yaml:17: Endpoint/e: spec.ports.0.hostPort: 70000 is too large; the maximum is 65535"),
    ("{containerPort: 0, hostPort: 80}",
     "m.yaml:17: Endpoint/e: spec.ports.0.containerPort: 0 is too small; the minimum is 1"),
    ("{containerPort: 80, hostPort: 80, protocol: sctp}",
     "m.yaml:17: Endpoint/e: spec.ports.0.protocol: \"sctp\" is not allowed; use one of 'tcp' "
     "or 'udp'"),
    ("{containerPort: 80, hostPort: 80, hostIP: '2001:db8::1'}",
     "m.yaml:17: Endpoint/e: spec.ports.0.hostIP: 2001:db8::1 is an IPv6 address but Network/n "
     "has no IPv6 pool, so the endpoint has no address to forward to"),
    ("{containerPort: 80, hostPort: 80, hostIP: '::1'}",
     "m.yaml:17: Endpoint/e: spec.ports.0.hostIP: ::1 is IPv6 loopback: the kernel never routes"),
    ("{containerPort: 80, hostPort: 80, hostIP: 239.1.2.3}",
     "m.yaml:17: Endpoint/e: spec.ports.0.hostIP: 239.1.2.3 cannot receive published traffic"),
    ("{containerPort: 80, hostPort: 80, hostIP: 255.255.255.255}",
     "m.yaml:17: Endpoint/e: spec.ports.0.hostIP: 255.255.255.255 cannot receive published"),
])
def test_bad_ports_are_refused_with_their_field(port: str, message: str) -> None:
    problems = _problems(port)
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_ports_on_an_internal_network_are_refused() -> None:
    problems = _problems("{containerPort: 80, hostPort: 80}", internal=True)
    assert problems == [
        "m.yaml:17: Endpoint/e: spec.ports.0: Network/n is internal (no traffic enters or leaves "
        "it), so ports cannot be published from it; remove spec.ports or use a network that is "
        "not internal"
    ]


def test_host_port_published_twice_with_protocol_and_host_ip() -> None:
    twice = ("{containerPort: 80, hostPort: 80, protocol: udp, hostIP: 10.9.9.9}\n"
             "    - {containerPort: 81, hostPort: 80, protocol: udp}")
    assert _problems(twice) == [
        "m.yaml:18: Endpoint/e: spec.ports.1.hostPort: host port udp/80 on all addresses is "
        "already published by Endpoint/e (spec.ports.0, m.yaml:17); pick another hostPort or "
        "hostIP"
    ]


@pytest.mark.parametrize(("driver", "extra", "says"), [
    ("macvlan", ", parent: eth9", "uses the macvlan driver: its endpoints are reached on their "
                                  "own addresses, nothing is published"),
    ("host", "", "uses the host driver: services listen on the host's addresses themselves"),
])
def test_only_bridge_networks_publish_ports(driver: str, extra: str, says: str) -> None:
    text = _BASE.replace("internal: INTERNAL, ", f"driver: {driver}{extra}, ").replace(
        "PORT", "{containerPort: 80, hostPort: 80}")
    if driver == "host":
        text = text.replace(", ipam: [{subnet: 10.1.0.0/24}]", "")
    with pytest.raises(ManifestError) as info:
        load_text(textwrap.dedent(text), "m.yaml")
    problems = [str(p) for p in info.value.problems]
    assert any(p.startswith("m.yaml:16: Endpoint/e: spec.ports: Network/n " + says)
               for p in problems), problems


def test_changed_chain_holding_someone_elses_rule_is_refused() -> None:
    kernel = FakeNft()
    desired = _applied(_world(), kernel)
    kernel.chains[("inet", "forward")] = ("filter", "forward", 0, "drop")
    kernel.add_foreign("inet", "forward", "theirs, with a comment", [{"accept": None}])
    with pytest.raises(ConflictError, match="holds rules without a cnm comment"):
        firewall.transaction(desired, kernel.ruleset())

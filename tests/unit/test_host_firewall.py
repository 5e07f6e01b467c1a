"""The verdict the host's other firewall gives cnm's traffic, and cnm's marked accepts.

Fixtures under tests/unit/host_firewall/ are real outputs, captured in a throw-away
namespace: `nft -j list ruleset` after iptables-nft wrote Docker 20.10's filter and
nat layout (tests/kernel/docker_layout.py's commands), the same after `cnm apply`
added its accepts to DOCKER-USER and after a RETURN was put above them; a plain
`inet filter` with a drop policy; an `iptables-legacy-save` of a drop policy;
firewalld 1.3.3 (nftables backend) started in a throw-away namespace, before and
after `firewall-cmd --zone=trusted --add-interface=br-front`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine import compute_plan
from reconciler.firewall import host_accept, problems
from reconciler.firewall.foreign import (
    LEGACY,
    NFTABLES,
    ForeignChain,
    ForeignRule,
    HostFirewall,
    chains_from_nft,
    chains_from_save,
)
from reconciler.firewall.verdict import blocked, owner_of
from reconciler.render import render_json, render_markdown, render_text
from reconciler.state import Drift, DriftReason, Resource, ResourceKey, State

from builders import endpoint, manifests, network, sandbox

FIXTURES = Path(__file__).parent / "host_firewall"
FRONT = ("10.89.0.0/24",)


def _nft(name: str, bridge_nf: bool = True) -> HostFirewall:
    objects = json.loads((FIXTURES / name).read_text())["nftables"]
    return HostFirewall(chains_from_nft(objects), {4: bridge_nf, 6: bridge_nf})


def _legacy(bridge_nf: bool = True) -> HostFirewall:
    text = (FIXTURES / "legacy-forward-drop.save").read_text()
    return HostFirewall(chains_from_save(text, "ip"), {4: bridge_nf})


# --- reading ---

def test_cnm_tables_are_not_foreign() -> None:
    host = _nft("docker-with-cnm-accepts.json")
    assert {(c.family, c.table) for c in host.chains} == {("ip", "filter"), ("ip", "nat")}


def test_counters_do_not_make_two_readings_differ() -> None:
    objects = json.loads((FIXTURES / "docker-forward-drop.json").read_text())["nftables"]
    counted = json.loads(json.dumps(objects).replace('"packets": 0', '"packets": 7'))
    assert chains_from_nft(objects) == chains_from_nft(counted)


def test_legacy_save_becomes_chains_with_hooks_and_policies() -> None:
    host = _legacy()
    forward = host.chain(LEGACY, "ip", "filter", "FORWARD")
    assert forward is not None
    assert (forward.hook, forward.policy, len(forward.rules)) == ("forward", "drop", 4)
    assert forward.place == "iptables-legacy table ip filter chain FORWARD"
    isolate = host.chain(LEGACY, "ip", "filter", "ISOLATE")
    assert isolate is not None and isolate.hook is None
    # `-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j DROP`: not understood, but its
    # verdict is still read, and its matches never taken to hold
    syn = forward.rules[2].exprs()
    assert {"drop": None} in syn and any("unknown" in e for e in syn)


def test_legacy_interface_wildcards_and_negation() -> None:
    (forward,) = [c for c in chains_from_save(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i br-+ ! -o eth0 -j ACCEPT\nCOMMIT\n", "ip")
        if c.name == "FORWARD"]
    assert forward.rules[0].exprs()[:2] == [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "br-*"}},
        {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "eth0"}},
    ]


# --- what "would drop" means ---

def test_docker_forward_policy_drop_is_named_with_its_owner() -> None:
    host = _nft("docker-forward-drop.json")
    (found,) = blocked("br-front", FRONT, host)
    assert found.drop.base.place == "table ip filter chain FORWARD"
    assert found.drop.rule is None
    assert found.labels == ("between sandboxes", "outbound", "replies", "published ports")
    assert found.text(owner_of(host, found.drop.base)) == (
        "forwarded traffic (between sandboxes, outbound, replies, published ports) on br-front "
        "is dropped by table ip filter chain FORWARD, policy drop (Docker)")


def test_without_br_netfilter_frames_between_sandboxes_skip_the_ip_hooks() -> None:
    (found,) = blocked("br-front", FRONT, _nft("docker-forward-drop.json", bridge_nf=False))
    assert "between sandboxes" not in found.labels


def test_cnm_accepts_in_docker_user_let_everything_pass() -> None:
    assert blocked("br-front", FRONT, _nft("docker-with-cnm-accepts.json")) == []


def test_a_return_above_cnm_accepts_drops_again() -> None:
    host = _nft("docker-return-above-cnm.json")
    assert [b.drop.base.name for b in blocked("br-front", FRONT, host)] == ["FORWARD"]


def test_docker_own_bridge_rules_do_not_cover_another_bridge() -> None:
    # Docker accepts `iifname "docker0"`: a rule for another interface never covers cnm's
    host = _nft("docker-forward-drop.json")
    (found,) = blocked("docker0", ("172.17.0.0/16",), host)
    # its established-replies accept is an iptables extension (xt conntrack): opaque,
    # so taken not to match; its outbound and same-bridge accepts are native and hold
    assert found.labels == ("replies", "published ports")


def test_plain_inet_drop_policy_with_established_accept() -> None:
    host = _nft("plain-inet-forward-drop.json")
    (found,) = blocked("br-front", FRONT, host)
    assert found.drop.base.place == "table inet filter chain forward"
    assert "replies" not in found.labels  # ct state established,related accept
    assert owner_of(host, found.drop.base) is None


def test_ipv6_networks_are_judged_by_ip6_and_inet_chains_only() -> None:
    assert blocked("br-six", ("fd00:89::/64",), _nft("docker-forward-drop.json")) == []
    (found,) = blocked("br-six", ("fd00:89::/64",), _nft("plain-inet-forward-drop.json"))
    assert found.version == 6


def test_legacy_drop_policy_and_a_drop_rule_in_a_jumped_chain() -> None:
    host = _legacy()
    (found,) = blocked("br-front", FRONT, host)
    # `-i br-+ ! -o br-+ -j ACCEPT` covers outbound; replies are accepted by ctstate
    assert found.labels == ("between sandboxes", "published ports")
    assert found.drop.base.place == "iptables-legacy table ip filter chain FORWARD"
    # a subnet inside 10.89.0.0/16 going to 10.90.0.0/16 is not one of the flows
    # (outside destinations are any address), so ISOLATE's drop is not reported
    assert found.drop.rule is None


def _chain(name: str, rules: list[list[Any]], hook: str | None = "forward",
           policy: str = "accept", family: str = "ip") -> ForeignChain:
    return ForeignChain(NFTABLES, family, "t", name, hook, "filter" if hook else None, 0, policy,
                        tuple(ForeignRule(i + 1, None, json.dumps(r))
                              for i, r in enumerate(rules)))


def _m(key: str, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": right}}


def _saddr(prefix: str, op: str = "==") -> dict[str, Any]:
    addr, length = prefix.split("/")
    return {"match": {"op": op, "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                      "right": {"prefix": {"addr": addr, "len": int(length)}}}}


@pytest.mark.parametrize(("rules", "dropped"), [
    ([[_m("oifname", "br-front"), {"drop": None}]],
     {"between sandboxes", "replies", "published ports"}),
    ([[_m("iifname", "br-*"), {"drop": None}]], {"between sandboxes", "outbound"}),
    ([[_m("iifname", "eth9"), {"drop": None}]], set()),  # another interface
    # an interface no rule names (the uplink) is not eth9 either
    ([[_m("iifname", "eth9", "!="), {"drop": None}]], {"everything"}),
    ([[_saddr("10.0.0.0/8"), {"drop": None}]], {"between sandboxes", "outbound"}),
    ([[_saddr("10.89.0.128/25"), {"drop": None}]], set()),  # part of the subnet: unknown
    ([[_saddr("192.168.0.0/16", "!="), {"reject": None}]], {"between sandboxes", "outbound"}),
    ([[{"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 1}}, {"drop": None}]],
     set()),  # a mark: cannot tell, never reported
    ([[{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
       {"drop": None}]], {"published ports"}),
    ([[{"goto": {"target": "sub"}}], [{"accept": None}]], {"everything"}),  # goto never returns
])
def test_rules_that_drop(rules: list[list[Any]], dropped: set[str]) -> None:
    chains = [_chain("base", rules[:1], policy="accept")]
    if len(rules) > 1 or any("goto" in e for e in rules[0]):
        chains = [_chain("base", [rules[0], *rules[1:]], policy="drop"),
                  _chain("sub", [], hook=None)]
    host = HostFirewall(tuple(chains), {4: True})
    labels = {label for b in blocked("br-front", FRONT, host) for label in b.labels}
    if dropped == {"everything"}:
        assert labels == {"between sandboxes", "outbound", "replies", "published ports"}
    else:
        assert labels == dropped


def test_jump_comes_back_on_return_and_accept_in_it_ends_the_base_chain() -> None:
    accept_front = [_m("iifname", "br-front"), {"accept": None}]
    host = HostFirewall((
        _chain("base", [[{"jump": {"target": "user"}}]], policy="drop"),
        _chain("user", [accept_front, [{"return": None}]], hook=None),
    ), {4: True})
    (found,) = blocked("br-front", FRONT, host)
    assert found.labels == ("replies", "published ports")  # what enters the bridge


def test_nat_and_bridge_hooks() -> None:
    host = HostFirewall((
        _chain("post", [], hook="postrouting", policy="drop"),
        _chain("brfwd", [], hook="forward", policy="drop", family="bridge"),
    ), {4: False})
    found = {b.drop.base.name: b.labels for b in blocked("br-front", FRONT, host)}
    assert found == {"post": ("outbound", "published ports", "published ports from the host"),
                     "brfwd": ("between sandboxes",)}


# --- where cnm puts its accepts ---

def test_docker_user_is_the_place_and_the_answer_ignores_cnm_own_rules() -> None:
    for name in ("docker-forward-drop.json", "docker-with-cnm-accepts.json",
                 "docker-return-above-cnm.json"):
        assert host_accept.needed_places("br-front", FRONT, _nft(name), False) == (
            "ip filter DOCKER-USER",)


def test_plain_drop_needs_the_opt_in() -> None:
    host = _nft("plain-inet-forward-drop.json")
    assert host_accept.needed_places("br-front", FRONT, host, False) == ()
    assert host_accept.needed_places("br-front", FRONT, host, True) == ("inet filter forward",)


def test_legacy_tables_are_never_written() -> None:
    assert host_accept.needed_places("br-front", FRONT, _legacy(), True) == ()


def _front(set_name: str = "default", **attrs: Any) -> Resource:
    return Resource(ResourceKey("Network", "front"), set_name,
                    {"bridge": "br-front", "subnets": FRONT, **attrs})


def test_observed_value_intact_missing_and_misplaced() -> None:
    assert host_accept.observed_value(_front(), _nft("docker-forward-drop.json")) is None
    assert host_accept.observed_value(_front(), _nft("docker-with-cnm-accepts.json")) == (
        "ip filter DOCKER-USER",)
    assert host_accept.observed_value(_front(), _nft("docker-return-above-cnm.json")) == (
        Drift(DriftReason.RULES_DIFFER, "ip filter DOCKER-USER"),)
    # another set's rules are not this set's
    assert host_accept.observed_value(_front("other"),
                                      _nft("docker-with-cnm-accepts.json")) is None


def _commands(desired_attr: Any, fixture: str) -> list[dict[str, Any]]:
    network = _front(**({host_accept.ATTR: desired_attr} if desired_attr is not None else {}))
    return host_accept.commands(State("default", {network.key: network}), _nft(fixture))


def test_commands_insert_delete_and_leave_the_rest() -> None:
    inserts = _commands(("ip filter DOCKER-USER",), "docker-forward-drop.json")
    assert [next(iter(c)) for c in inserts] == ["insert", "insert"]
    rule = inserts[0]["insert"]["rule"]
    assert (rule["family"], rule["table"], rule["chain"]) == ("ip", "filter", "DOCKER-USER")
    assert rule["comment"] == "cnm/v1 set=default Network/front host-accept"
    assert _commands(("ip filter DOCKER-USER",), "docker-with-cnm-accepts.json") == []
    repair = _commands(("ip filter DOCKER-USER",), "docker-return-above-cnm.json")
    assert [next(iter(c)) for c in repair] == ["delete", "delete", "insert", "insert"]
    gone = _commands((), "docker-with-cnm-accepts.json")
    assert [next(iter(c)) for c in gone] == ["delete", "delete"]
    # a network left out of the desired state (deleted) loses its accepts too
    assert len(host_accept.commands(State("default"), _nft("docker-with-cnm-accepts.json"))) == 2
    # another set's accepts are never touched
    assert host_accept.commands(State("other"), _nft("docker-with-cnm-accepts.json")) == []


# --- in the plan ---

def _world() -> Any:
    return manifests(network("front", "10.89.0.0/24"), sandbox("a"),
                     endpoint("a-front", "front", "a"))


def _observed(fixture: str | None) -> State:
    host = _nft(fixture) if fixture else None
    return State("default", host_firewall=host)


def test_plan_shows_the_problem_and_the_accepts_that_resolve_it() -> None:
    planned = compute_plan(_world(), _observed("docker-forward-drop.json"))
    network = planned.desired.get(ResourceKey("Network", "front"))
    assert network is not None and network.get("host_firewall") == ("ip filter DOCKER-USER",)
    (line,) = planned.plan.problems
    assert line.startswith("Network/front: forwarded traffic (between sandboxes")
    assert line.endswith("policy drop (Docker); apply adds accepts in ip filter DOCKER-USER")
    assert problems.unresolved(planned.plan.problems) == ()
    text = render_text(planned.plan)
    assert "\n  PROBLEM Network/front: forwarded traffic" in text
    assert json.loads(render_json(planned.plan))["problems"] == [line]
    assert "**problem:**" in render_markdown(planned.plan)


def test_plain_drop_without_opt_in_is_an_unresolved_problem() -> None:
    planned = compute_plan(_world(), _observed("plain-inet-forward-drop.json"))
    (line,) = problems.unresolved(planned.plan.problems)
    assert "table inet filter chain forward, policy drop" in line
    assert "hostFirewall: accept" in line
    network = planned.desired.get(ResourceKey("Network", "front"))
    assert network is not None and "host_firewall" not in network.attrs


def test_opt_in_network_gets_its_accepts_in_the_dropping_chain() -> None:
    opted = manifests(network("front", "10.89.0.0/24", host_firewall="accept"))
    planned = compute_plan(opted, _observed("plain-inet-forward-drop.json"))
    front = planned.desired.get(ResourceKey("Network", "front"))
    assert front is not None and front.get("host_firewall") == ("inet filter forward",)
    assert problems.unresolved(planned.plan.problems) == ()


def test_no_host_firewall_read_means_no_problem_and_no_attribute() -> None:
    planned = compute_plan(_world(), _observed(None))
    assert planned.plan.problems == ()
    assert all("host_firewall" not in r.attrs for r in planned.desired)
    assert "PROBLEM" not in render_text(planned.plan)
    assert "problems" not in json.loads(render_json(planned.plan))


def test_in_sync_after_apply_is_an_empty_plan_without_problems() -> None:
    first = compute_plan(_world(), _observed("docker-forward-drop.json"))
    host = _nft("docker-with-cnm-accepts.json")
    applied = host_accept.with_host_firewall(replace(first.desired, host_firewall=None), host)
    again = compute_plan(_world(), applied)
    assert again.plan.empty and again.plan.problems == ()


def test_drift_after_a_docker_restart_is_an_update() -> None:
    first = compute_plan(_world(), _observed("docker-forward-drop.json"))
    host = _nft("docker-return-above-cnm.json")
    drifted = host_accept.with_host_firewall(replace(first.desired, host_firewall=None), host)
    again = compute_plan(_world(), drifted)
    (action,) = again.plan.actions
    assert (action.verb, action.key.name, [c.path for c in action.changes]) == (
        "update", "front", ["host_firewall"])
    assert "(rules differ)" in render_text(again.plan)


# --- firewalld (1.3.3, nftables backend, started in a throw-away namespace) ---

def test_firewalld_public_zone_reject_is_named() -> None:
    host = _nft("firewalld-public.json")
    (found,) = blocked("br-front", FRONT, host)
    # established replies and DNATed traffic are accepted before the zones
    assert found.labels == ("between sandboxes", "outbound")
    assert found.drop.base.place == "table inet firewalld chain filter_FORWARD"
    assert found.drop.rule is not None and found.drop.chain.name == "filter_FWD_public"
    assert owner_of(host, found.drop.base) == "firewalld"


def test_firewalld_trusted_zone_binding_lets_it_pass() -> None:
    assert blocked("br-front", FRONT, _nft("firewalld-br-front-trusted.json")) == []
    # another bridge is still in the public zone
    assert blocked("br-back", ("10.90.0.0/24",), _nft("firewalld-br-front-trusted.json"))


def test_active_zones_reply_of_dbus_send() -> None:
    from reconciler.kernel.firewalld import parse_active_zones

    reply = (FIXTURES / "firewalld-active-zones.txt").read_text()
    assert parse_active_zones(reply) == {"br-x": "trusted"}
    two = reply.replace('string "br-x"', 'string "br-x"\n                  string "br-y"')
    assert parse_active_zones(two) == {"br-x": "trusted", "br-y": "trusted"}
    assert parse_active_zones("method return\n   array [\n   ]\n") == {}


def _firewalld(fixture: str, zones: dict[str, str] | None) -> HostFirewall:
    return replace(_nft(fixture), zones=zones)


def test_firewalld_running_means_binding_the_bridge_to_trusted() -> None:
    public = _firewalld("firewalld-public.json", {})
    assert host_accept.needed_places("br-front", FRONT, public, False) == (
        host_accept.FIREWALLD,)
    # the answer stays once the bridge is bound (firewalld's dispatch rules for it are
    # cnm's doing, left out of the analysis), so plans do not flip
    bound = _firewalld("firewalld-br-front-trusted.json", {"br-front": "trusted"})
    assert host_accept.needed_places("br-front", FRONT, bound, False) == (
        host_accept.FIREWALLD,)
    assert host_accept.observed_value(_front(), bound) == (host_accept.FIREWALLD,)
    # firewalld not answering: only reported; a user's binding to another zone: left alone
    assert host_accept.needed_places("br-front", FRONT, _nft("firewalld-public.json"),
                                     False) == ()
    other = _firewalld("firewalld-public.json", {"br-front": "public"})
    assert host_accept.needed_places("br-front", FRONT, other, False) == ()


def test_firewalld_zone_changes_bind_and_unbind_only_owned() -> None:
    wants = _front(**{host_accept.ATTR: (host_accept.FIREWALLD,)})
    state = State("default", {wants.key: wants})
    public = _firewalld("firewalld-public.json", {})
    assert host_accept.zone_changes(state, public, []) == [("bind", "br-front")]
    bound = _firewalld("firewalld-br-front-trusted.json",
                       {"br-front": "trusted", "br-user": "trusted"})
    assert host_accept.zone_changes(state, bound, ["br-front"]) == []
    # the network is gone: its bridge (owned) is unbound, the user's br-user never
    assert host_accept.zone_changes(State("default"), bound, ["br-front"]) == [
        ("unbind", "br-front")]


def test_firewalld_plan_line_is_resolved_by_the_binding() -> None:
    observed = State("default", host_firewall=_firewalld("firewalld-public.json", {}))
    planned = compute_plan(_world(), observed)
    (line,) = planned.plan.problems
    assert "table inet firewalld chain filter_FORWARD" in line
    assert line.endswith("(firewalld); apply adds accepts in firewalld zone trusted")


def test_export_keeps_the_opt_in() -> None:
    from reconciler.firewall import network_spec

    assert network_spec(_front(host_firewall=("inet filter forward",))) == {
        "hostFirewall": "accept"}
    assert network_spec(_front(host_firewall=("ip filter DOCKER-USER",))) == {}
    assert network_spec(_front(host_firewall=(host_accept.FIREWALLD,))) == {}


def test_drift_of_host_firewall_survives_a_json_round_trip() -> None:
    from reconciler.state import freeze, internal, thaw

    value = (Drift(DriftReason.RULES_DIFFER, "ip filter DOCKER-USER"), "inet filter forward")
    assert internal("host_firewall", freeze(thaw(value))) == value

"""cnm's marked accept rules in other systems' chains, where they document that users
may add their own: Docker's `DOCKER-USER` (table ip/ip6 filter, iptables-nft), and,
when a network opts in (`hostFirewall: accept`), the dropping base chain itself.

A Network's attribute `host_firewall` is the tuple of places (`ip filter
DOCKER-USER`) that hold its two accept rules, `iifname B accept` and `oifname B
accept`, each commented `cnm/v1 set=<set> Network/<name> host-accept`, at the top of
the chain. Only cnm's own traffic is let through: cnm's `inet cnm` table still
isolates networks, as its drops hold whatever another table accepts.

* `needed_places`: where the accepts must go, from the host's firewall with cnm's
  marked rules left out (so that the answer does not change once they are there);
* `attach_observed`: the attribute as the kernel shows it (a place whose rules are
  missing, changed, duplicated or below a rule of the chain's owner is a `Drift`);
* `commands`: the nft commands that make the kernel hold the desired places; rules
  without cnm's comment, and rules of other sets, are never touched;
* `zone_changes`: the firewalld bindings to make or undo.

The plan's problem lines are `firewall/problems.py`'s.

Pure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from reconciler import caching
from reconciler.firewall.expr import canonical, match, meta
from reconciler.firewall.foreign import NFTABLES, ForeignChain, ForeignRule, HostFirewall
from reconciler.firewall.table import comment_of, parse_comment
from reconciler.firewall.verdict import Blocked, blocked
from reconciler.state import AttrValue, Drift, DriftReason, Owner, Resource, ResourceKey, State

ATTR = "host_firewall"
ITEM = "host-accept"
DOCKER_USER = "DOCKER-USER"
#: The place of a bridge bound to firewalld's `trusted` zone (runtime configuration).
FIREWALLD = "firewalld zone trusted"
TRUSTED = "trusted"


def place_of(chain: ForeignChain) -> str:
    return f"{chain.family} {chain.table} {chain.name}"


def accept_exprs(bridge: str) -> tuple[str, str]:
    """The canonical expressions of the two accept rules of a bridge."""
    return (canonical([match(meta("iifname"), bridge), {"accept": None}]),
            canonical([match(meta("oifname"), bridge), {"accept": None}]))


def without_cnm(host: HostFirewall) -> HostFirewall:
    """The host's firewall with every cnm-marked rule left out (the last answer is kept
    for the same host object: a plan asks once per network)."""
    last = _WITHOUT_CNM.get("last") if caching.ENABLED else None
    if last is not None and last[0] is host:
        return last[1]
    chains = tuple(c if not any(parse_comment(r.comment) for r in c.rules) else replace(
        c, rules=tuple(r for r in c.rules if parse_comment(r.comment) is None))
        for c in host.chains)
    clean = replace(host, chains=chains)
    _WITHOUT_CNM["last"] = (host, clean)
    return clean


_WITHOUT_CNM: dict[str, tuple[HostFirewall, HostFirewall]] = {}


def is_firewalld(chain: ForeignChain) -> bool:
    return (chain.source, chain.family, chain.table) == (NFTABLES, "inet", "firewalld")


def _names_bridge(rule: ForeignRule, bridge: str) -> bool:
    return any(isinstance(e, dict) and "match" in e
               and e["match"].get("left") in ({"meta": {"key": "iifname"}},
                                              {"meta": {"key": "oifname"}})
               and e["match"].get("right") == bridge for e in rule.exprs())


def without_cnm_for(host: HostFirewall, bridge: str) -> HostFirewall:
    """The host's firewall without cnm's doing for `bridge`: its marked rules, and the
    dispatch rules firewalld made for binding the bridge to the trusted zone."""
    clean = without_cnm(host)
    if host.zones is None or host.zones.get(bridge) != TRUSTED:
        return clean
    chains = tuple(replace(c, rules=tuple(r for r in c.rules if not _names_bridge(r, bridge)))
                   if is_firewalld(c) else c for c in clean.chains)
    return replace(clean, chains=chains, zones={
        name: zone for name, zone in host.zones.items() if name != bridge})


def with_accepts(host: HostFirewall, chain: ForeignChain, bridge: str) -> HostFirewall:
    rules = tuple(ForeignRule(0, None, expr) for expr in accept_exprs(bridge))
    chains = tuple(replace(c, rules=rules + c.rules) if c == chain else c for c in host.chains)
    return replace(host, chains=chains)


def needed_places(bridge: str, subnets: tuple[str, ...], host: HostFirewall,
                  opt_in: bool) -> tuple[str, ...]:
    """(Memoized on `host`, see `HostFirewall.memo`.)"""
    key = ("needed_places", bridge, subnets, opt_in)
    found = host.memo.get(key) if caching.ENABLED else None
    if found is None:
        found = host.memo[key] = _needed_places(bridge, subnets, host, opt_in)
    return found  # type: ignore[return-value]


def _needed_places(bridge: str, subnets: tuple[str, ...], host: HostFirewall,
                   opt_in: bool) -> tuple[str, ...]:
    """The chains that must hold the network's accepts so that no foreign nftables
    chain drops its traffic: `DOCKER-USER` of a dropping table that has one (Docker
    documents it for this), else, with `opt_in`, the dropping base chain itself."""
    clean = without_cnm_for(host, bridge)
    places: list[ForeignChain] = []
    trusted = False
    for found in blocked(bridge, subnets, clean):
        base = found.drop.base
        if base.source != NFTABLES:
            continue  # legacy iptables: reported, never written (docs/firewall.md)
        if is_firewalld(base):  # bind the bridge when firewalld answers and it is unbound
            trusted = trusted or (host.zones is not None
                                  and host.zones.get(bridge) in (None, TRUSTED))
            continue
        candidates = [c for c in (clean.chain(NFTABLES, base.family, base.table, DOCKER_USER),)
                      if c is not None]
        if opt_in:
            candidates.append(base)
        for candidate in candidates:
            if candidate in places or _resolves(found, candidate, bridge, subnets, clean):
                if candidate not in places:
                    places.append(candidate)
                break
    return tuple(sorted([place_of(c) for c in places] + ([FIREWALLD] if trusted else [])))


def _resolves(found: Blocked, chain: ForeignChain, bridge: str, subnets: tuple[str, ...],
              host: HostFirewall) -> bool:
    after = blocked(bridge, subnets, with_accepts(host, chain, bridge))
    return not any(b.drop.base == found.drop.base and b.version == found.version
                   for b in after)


def _network_rules(host: HostFirewall, owner_key: ResourceKey, set_name: str
                   ) -> dict[ForeignChain, list[tuple[int, ForeignRule]]]:
    """This network's marked rules, by chain, with their positions."""
    found: dict[ForeignChain, list[tuple[int, ForeignRule]]] = {}
    for chain in host.chains:
        if chain.source != NFTABLES:
            continue
        for position, rule in enumerate(chain.rules):
            parsed = parse_comment(rule.comment)
            if parsed is not None and parsed[0].set_name == set_name \
                    and parsed[0].key == owner_key and parsed[1] == ITEM:
                found.setdefault(chain, []).append((position, rule))
    return found


def _intact(chain: ForeignChain, rules: list[tuple[int, ForeignRule]], bridge: str) -> bool:
    """Exactly the two accepts, each once, above every rule that is not cnm's."""
    if sorted(r.expr for _, r in rules) != sorted(accept_exprs(bridge)):
        return False
    first_foreign = next((i for i, r in enumerate(chain.rules)
                          if parse_comment(r.comment) is None), len(chain.rules))
    return all(position < first_foreign for position, _ in rules)


def observed_value(resource: Resource, host: HostFirewall) -> AttrValue | None:
    """The attribute of an observed network: None when no marked rule of it exists."""
    bridge = resource.get("bridge")
    found = _network_rules(host, resource.key, resource.set_name)
    bound = host.zones is not None and isinstance(bridge, str) \
        and host.zones.get(bridge) == TRUSTED
    if not found and not bound:
        return None
    values: list[AttrValue] = [FIREWALLD] if bound else []
    for chain, rules in sorted(found.items(), key=lambda item: place_of(item[0])):
        if isinstance(bridge, str) and _intact(chain, rules, bridge):
            values.append(place_of(chain))
        else:
            values.append(Drift(DriftReason.RULES_DIFFER, place_of(chain)))
    return tuple(sorted(values, key=str))


def attach_observed(state: State, host: HostFirewall) -> State:
    """`state` with each network's `host_firewall` as the kernel shows it."""
    resources = dict(state.resources)
    changed = False
    for resource in state.of_kind("Network"):
        value = observed_value(resource, host)
        if value is not None:
            resources[resource.key] = Resource(resource.key, resource.set_name,
                                               {**resource.attrs, ATTR: value})
            changed = True
    if not changed:
        return state
    return replace(state, resources=resources)


def with_host_firewall(state: State, host: HostFirewall) -> State:
    """An observed state carrying the host's firewall, with each network's
    `host_firewall` attribute read from it."""
    return replace(attach_observed(state, host), host_firewall=host)


def desire(desired: State, observed: State, host: HostFirewall | None,
           opt_in: Collection[str] = ()) -> State:
    """`desired` with `host_firewall` on each network that needs accepts elsewhere, or
    that has some now (then `()`: they go)."""
    if host is None:
        return desired
    resources = dict(desired.resources)
    changed = False
    for network in desired.of_kind("Network"):
        bridge, subnets = network.get("bridge"), network.get("subnets")
        if not isinstance(bridge, str) or not isinstance(subnets, tuple):
            continue
        places = needed_places(bridge, tuple(str(s) for s in subnets), host,
                               network.key.name in opt_in)
        have = observed.get(network.key)
        if places or (have is not None and have.get(ATTR) is not None):
            resources[network.key] = Resource(network.key, network.set_name,
                                              {**network.attrs, ATTR: places})
            changed = True
    return replace(desired, resources=resources) if changed else desired


def commands(desired: State, host: HostFirewall) -> list[dict[str, Any]]:
    """nft commands (deletes, then inserts) that make foreign chains hold exactly the
    accepts `desired` asks for its set; other rules are never touched."""
    set_name = desired.set_name
    wanted: dict[tuple[str, str], tuple[str, Owner]] = {}  # (place, network) -> bridge
    for network in desired.of_kind("Network"):
        places, bridge = network.get(ATTR), network.get("bridge")
        if isinstance(places, tuple) and isinstance(bridge, str):
            for place in places:
                wanted[(str(place), network.key.name)] = (bridge, network.owner)
    deletes: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    present: set[tuple[str, str]] = set()
    for chain in host.chains:
        if chain.source != NFTABLES:
            continue
        mine: dict[str, list[tuple[int, ForeignRule]]] = {}
        for position, rule in enumerate(chain.rules):
            parsed = parse_comment(rule.comment)
            if parsed is not None and parsed[0].set_name == set_name and parsed[1] == ITEM \
                    and parsed[0].key.kind == "Network":
                mine.setdefault(parsed[0].key.name, []).append((position, rule))
        for name, rules in sorted(mine.items()):
            want = wanted.get((place_of(chain), name))
            if want is not None and _intact(chain, rules, want[0]):
                present.add((place_of(chain), name))
                continue
            deletes += [_delete(chain, rule) for _, rule in rules]
    chains = {place_of(c): c for c in host.chains if c.source == NFTABLES}
    for (place, name), (bridge, owner) in sorted(wanted.items()):
        target = chains.get(place) if place != FIREWALLD else None
        if (place, name) in present or target is None:
            continue
        comment = comment_of(owner, ITEM)
        for expr in reversed(accept_exprs(bridge)):  # each insert goes to the top
            inserts.append({"insert": {"rule": {
                "family": target.family, "table": target.table, "chain": target.name,
                "expr": _loads(expr), "comment": comment}}})
    return deletes + inserts


def _delete(chain: ForeignChain, rule: ForeignRule) -> dict[str, Any]:
    return {"delete": {"rule": {"family": chain.family, "table": chain.table,
                                "chain": chain.name, "handle": rule.handle}}}


def _loads(expr: str) -> Any:
    import json
    return json.loads(expr)


def zone_changes(desired: State, host: HostFirewall, owned: Collection[str]
                 ) -> list[tuple[str, str]]:
    """("bind" | "unbind", bridge) for firewalld's trusted zone: bind the bridges of
    networks that want it, unbind `owned` bridges (cnm's links of this set, bound to
    the trusted zone) whose networks no longer want it or are gone."""
    if host.zones is None:
        return []
    wanting = {str(n.get("bridge")) for n in desired.of_kind("Network")
               if FIREWALLD in _places(n)}
    changes = [("bind", bridge) for bridge in sorted(wanting)
               if host.zones.get(bridge) != TRUSTED]
    changes += [("unbind", bridge) for bridge in sorted(owned)
                if bridge not in wanting and host.zones.get(bridge) == TRUSTED]
    return changes


def _places(network: Resource) -> tuple[AttrValue, ...]:
    value = network.get(ATTR)
    return value if isinstance(value, tuple) else ()

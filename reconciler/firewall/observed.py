"""Observed attributes: the firewall attributes of each resource read back from the rules
the kernel shows (`attach`). A value is only read where the rules present are exactly the
rules cnm writes for it; rules that fit no value make it a `Drift`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from reconciler.caching import BuildMemo
from reconciler.firewall.network_rules import (
    icc_port_rules,
    icc_rules,
    isolation_rules,
    localhost_rules,
    masquerade_rules,
)
from reconciler.firewall.ports import PortMap, port_rules, sorted_ports
from reconciler.firewall.ruleset import Ruleset, occupied
from reconciler.firewall.table import FAMILIES, Rule, comment_of, parse_comment
from reconciler.firewall.wanted import addresses_of, subnets_of, text_attr, veths_by_network
from reconciler.state import AttrValue, Drift, DriftReason, Resource, ResourceKey, State

#: Observed value of a network setting whose rules are all gone.
NO_RULES = Drift(DriftReason.NO_RULES)
#: Observed value of a network setting whose rules are present but fit no value.
RULES_DIFFER = Drift(DriftReason.RULES_DIFFER)


def _choose(actual: Counter[Rule], candidates: Sequence[tuple[AttrValue, list[Rule]]]) -> AttrValue:
    """The value whose rules are exactly the ones present; None if no value fits."""
    for value, rules in candidates:
        if actual == Counter(rules):
            return value
    return None


def _owned_items(state: State, ruleset: Ruleset) -> dict[ResourceKey, dict[str, Counter[Rule]]]:
    """This set's rules by owner and item; rules of a table whose skeleton is broken
    count as absent (without their base chains they have no effect)."""
    items: dict[ResourceKey, dict[str, Counter[Rule]]] = defaultdict(lambda: defaultdict(Counter))
    intact = {family: ruleset.infra_intact(family) for family in FAMILIES}
    for observed in ruleset.rules:
        parsed = parse_comment(observed.comment)
        if parsed is None or not intact[observed.family]:
            continue
        owner, item = parsed
        if owner.set_name == state.set_name:
            items[owner.key][item][observed.rule] += 1
    return items



def attach(
    state: State,
    ruleset: Ruleset,
    forwarding: Mapping[int, bool],
    hairpin: Mapping[str, bool] | None = None,
    views: BuildMemo[ResourceKey, Resource] | None = None,
    localnet: Mapping[str, bool] | None = None,
) -> State:
    """The observed state with each resource's firewall attributes read from the rules,
    the forwarding switches (IP version -> on), bridge ports (name -> hairpin on) and
    bridges' `route_localnet` switches (name -> on).

    Rules whose owner has no other kernel object (its links were deleted by
    hand) become a resource of their own, so that a plan prunes or replaces it.

    `views`: endpoint views of the previous `attach` by their inputs (the observed
    resource, its rules, its port's hairpin flag), reused when those are equal (a
    view is a pure function of them): `cnm watch`'s observation attaches the firewall
    to a thousand unchanged endpoints after every link change. Its owner passes it in
    (`kernel/live.LiveObservation`); without it nothing is reused.
    """
    memo = (views if views is not None else BuildMemo()).next_build()
    items = _owned_items(state, ruleset)
    veths = veths_by_network(state)
    resources: dict[ResourceKey, Resource] = dict(state.resources)
    for key in sorted(set(items) - set(resources)):
        if key.kind not in ("Network", "Endpoint"):
            continue  # no cnm rule has another owner; a forged one is left to its maker
        if key.kind == "Network":
            attrs: dict[str, AttrValue] = {
                "internal": None, "icc": None, "masquerade": None, "localhost": None,
            }
        else:
            attrs = {"ports": sorted_ports(
                Drift(DriftReason.RULES_DIFFER, item.removeprefix("port ")) for item in items[key]
                if item != "icc"
            )}
        resources[key] = Resource(key, state.set_name, attrs)
    for key, resource in sorted(resources.items()):
        mine = items.get(key, {})
        extra: dict[str, AttrValue] = {}
        bridge = text_attr(resource, "bridge")
        if key.kind == "Network" and bridge is not None:
            extra = _network_view(resource, bridge, mine, veths.get(key.name, []))
            extra.update({f"forwarding.ipv{v}": on for v, on in sorted(forwarding.items())})
            if localnet is not None and bridge in localnet:
                extra["route_localnet"] = localnet[bridge]
        elif key.kind == "Endpoint" and "veth" in resource.attrs:
            veth = text_attr(resource, "veth")
            port_on = (hairpin or {}).get(veth) if veth is not None else None
            inputs = (resource, mine, port_on)
            view = memo.get(key, inputs)
            if view is None:
                extra = {"ports": _ports_view(resource, mine), "hairpin": port_on}
                if "icc" in mine:  # on another set's network (shared_networks.py)
                    extra["icc"] = False if veth is not None and mine["icc"] == Counter(
                        icc_port_rules(comment_of(resource.owner, "icc"), veth)) \
                        else RULES_DIFFER
                view = memo.put(key, inputs, resource.extended(extra))
            resources[key] = view
            continue
        if extra:
            resources[key] = resource.extended(extra)
    return State(
        state.set_name, resources, {**state.occupied, **occupied(ruleset)}, state.orphans,
        state.reserved_prefixes, borrowable=state.borrowable, sharers=state.sharers,
    )


def _network_view(
    resource: Resource, bridge: str, mine: Mapping[str, Counter[Rule]], veths: Sequence[str]
) -> dict[str, AttrValue]:
    owner, subnets = resource.owner, subnets_of(resource)
    none: Counter[Rule] = Counter()

    def comment(item: str) -> str:
        return comment_of(owner, item)

    internal = _choose(mine.get("isolation", none), [
        (value, isolation_rules(comment("isolation"), bridge, subnets, value))
        for value in (False, True)
    ])
    icc = _choose(mine.get("icc", none), [
        (value, icc_rules(comment("icc"), bridge, veths, value)) for value in (True, False)
    ])
    masquerade = _choose(mine.get("masquerade", none), [
        (value, masquerade_rules(comment("masquerade"), bridge, subnets, value))
        for value in (False, True)
    ])
    localhost = _choose(mine.get("localhost", none), [
        (value, localhost_rules(comment("localhost"), bridge, value)) for value in (False, True)
    ])
    strays = bool(set(mine) - {"isolation", "icc", "masquerade", "localhost"})
    if strays:
        internal = None  # rules cnm would not write for a network: show them as drift
    values = {"internal": internal, "icc": icc, "masquerade": masquerade, "localhost": localhost}
    return {
        name: value if value is not None
        else NO_RULES if not mine.get("isolation" if name == "internal" else name) and not strays
        else RULES_DIFFER
        for name, value in values.items()
    }


def _ports_view(resource: Resource, mine: Mapping[str, Counter[Rule]]) -> tuple[str | Drift, ...]:
    if not mine:
        return sorted_ports([])  # most endpoints publish nothing: no address to parse
    addresses = addresses_of(resource)
    values: list[str | Drift] = []
    for item, present in mine.items():
        if item == "icc":
            continue  # not a port: an endpoint's icc drop (attach)
        text = item.removeprefix("port ")
        port = PortMap.parse(text) if item.startswith("port ") else None
        expected = port_rules(comment_of(resource.owner, item), port, addresses) if port else None
        values.append(text if expected is not None and present == Counter(expected)
                      else Drift(DriftReason.RULES_DIFFER, text))
    return sorted_ports(values)

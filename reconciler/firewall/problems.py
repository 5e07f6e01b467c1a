"""The plan's problem lines: what in the host's other firewall drops some traffic of
a desired network, and whether the accepts the plan keeps resolve it
(docs/firewall.md, "Seeing it: problem lines"). Pure."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler import caching
from reconciler.firewall.foreign import NFTABLES, HostFirewall
from reconciler.firewall.host_accept import (
    ATTR,
    FIREWALLD,
    is_firewalld,
    place_of,
    with_accepts,
    without_cnm_for,
)
from reconciler.firewall.verdict import blocked, owner_of
from reconciler.state import AttrValue, Resource, State

#: The end of a problem line that the plan's own accepts resolve.
RESOLVED_NOTE = "; apply adds accepts in "


def problems(desired: State, host: HostFirewall | None) -> tuple[str, ...]:
    """One line per foreign base chain that drops some traffic of a desired network,
    as the host's firewall is now (cnm's marked accepts included), saying whether the
    accepts the plan adds resolve it."""
    if host is None:
        return ()
    lines: list[str] = []
    for network in desired.of_kind("Network"):
        bridge, subnets = network.get("bridge"), network.get("subnets")
        if not isinstance(bridge, str) or not isinstance(subnets, tuple):
            continue
        key = ("problems", str(network.key), bridge, subnets, network.get(ATTR))
        found = host.memo.get(key) if caching.ENABLED else None
        if found is None:
            found = host.memo[key] = _problems(network, bridge, subnets, host)
        lines += found  # type: ignore[arg-type]
    return tuple(lines)


def _problems(network: Resource, bridge: str, subnets: tuple[AttrValue, ...],
              host: HostFirewall) -> tuple[str, ...]:
    lines: list[str] = []
    nets = tuple(str(s) for s in subnets)
    places = network.get(ATTR)
    after = without_cnm_for(host, bridge)
    for place in places if isinstance(places, tuple) else ():
        chain = next((c for c in after.chains
                      if c.source == NFTABLES and place_of(c) == place), None)
        if chain is not None:
            after = with_accepts(after, chain, bridge)
    trusted = isinstance(places, tuple) and FIREWALLD in places
    remaining = {(b.drop.base, b.version) for b in blocked(bridge, nets, after)
                 if not (trusted and is_firewalld(b.drop.base))}
    for found in blocked(bridge, nets, host):
        text = f"{network.key}: {found.text(owner_of(host, found.drop.base))}"
        if (found.drop.base, found.version) not in remaining and isinstance(places, tuple):
            text += RESOLVED_NOTE + ", ".join(str(p) for p in places)
        else:
            text += "; to allow it see docs/firewall.md (hostFirewall: accept)"
        lines.append(text)
    return tuple(lines)


def unresolved(lines: Iterable[str]) -> tuple[str, ...]:
    """The problem lines that remain once the plan is applied."""
    return tuple(line for line in lines if RESOLVED_NOTE not in line)

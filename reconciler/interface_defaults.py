"""The interface name and the default routes of each joined endpoint when its manifest
does not say, as Docker gives them to a container on several networks.

* `ifname`: eth0, eth1, ... An endpoint keeps the `ethN` name the kernel shows for it
  in its sandbox (the kernel is the state), so adding or removing an endpoint never
  renames another; a new endpoint takes the lowest free `ethN`, endpoints taken in
  name order. A hand-written `ifname` always wins.
* default routes, per IP version: of the sandbox's endpoints on non-internal networks
  with a pool of that version, the one with `gateway: true`, else the highest
  `gwPriority`, then the first by endpoint name (Docker's `--gw-priority`).
  `gateway: false` opts an endpoint out; internal networks never give a default route.

Pure: the observation is only read for the names interfaces already have.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from reconciler.caching import BuildMemo
from reconciler.drivers import is_cluster_scoped
from reconciler.state import ResourceKey, State

if TYPE_CHECKING:
    from reconciler.manifest_set import Manifests
    from reconciler.model import Endpoint

#: Names this module hands out; only these are kept from the kernel without being asked
#: (an interface still called `web0` after its manifest dropped `ifname: web0` is renamed).
_DEFAULT_NAME = re.compile(r"^eth(0|[1-9][0-9]{0,3})$")
VERSIONS = (4, 6)


class Placement(NamedTuple):  # tuples: a thousand are made per build, cheaply
    """Where one endpoint sits in its sandbox: its interface name, and the IP versions
    whose default route goes through it."""

    ifname: str
    routes: frozenset[int]


class Member(NamedTuple):
    """What placement needs to know of one endpoint of a sandbox."""

    name: str
    ifname: str | None = None  # hand-written
    gateway: bool | None = None  # hand-written override
    gw_priority: int = 0
    internal: bool = False
    families: frozenset[int] = frozenset(VERSIONS)  # IP versions its network has pools of


def place_sandbox(members: Iterable[Member], held: Mapping[str, str]) -> dict[str, Placement]:
    """Placements of one sandbox's endpoints; `held`: endpoint name -> the interface name
    the kernel shows for it in this sandbox."""
    ordered = sorted(members, key=lambda m: m.name)
    names = _names(ordered, held)
    routes: dict[str, set[int]] = defaultdict(set)
    for version in VERSIONS:
        chosen = _route_carrier(ordered, version)
        if chosen is not None:
            routes[chosen].add(version)
    return {m.name: Placement(names[m.name], frozenset(routes[m.name])) for m in ordered}


def _names(ordered: Sequence[Member], held: Mapping[str, str]) -> dict[str, str]:
    names = {m.name: m.ifname for m in ordered if m.ifname is not None}
    taken = set(names.values())
    for member in ordered:  # keep what the kernel shows, unless a hand-written name wants it
        current = held.get(member.name)
        if member.name in names or current is None or not _DEFAULT_NAME.match(current):
            continue
        if current not in taken:
            names[member.name] = current
            taken.add(current)
    index = 0
    for member in ordered:
        if member.name in names:
            continue
        while f"eth{index}" in taken:
            index += 1
        names[member.name] = f"eth{index}"
        taken.add(names[member.name])
    return names


def _route_carrier(ordered: Sequence[Member], version: int) -> str | None:
    eligible = [m for m in ordered
                if not m.internal and version in m.families and m.gateway is not False]
    forced = [m for m in eligible if m.gateway is True]
    if forced:
        return forced[0].name  # validation allows one per sandbox and version
    if not eligible:
        return None
    return min(eligible, key=lambda m: (-m.gw_priority, m.name)).name


def member_of(endpoint: Endpoint, manifests: Manifests) -> Member:
    network = manifests.networks[endpoint.spec.network].spec
    spec = endpoint.spec
    return Member(
        name=endpoint.metadata.name, ifname=spec.ifname, gateway=spec.gateway,
        gw_priority=spec.gw_priority,
        # an overlay network gives no default route, as an internal one
        internal=network.internal or is_cluster_scoped(network.driver),
        families=frozenset(pool.subnet.version for pool in network.ipam),
    )


def place_alone(member: Member, held: str | None) -> Placement:
    """`place_sandbox` of a sandbox with one endpoint (nearly all of them), without the
    sorting and bookkeeping: a test checks that the two agree."""
    ifname = member.ifname
    if ifname is None:
        ifname = held if held is not None and _DEFAULT_NAME.match(held) else "eth0"
    routed = not member.internal and member.gateway is not False
    return Placement(ifname, member.families if routed else frozenset())


def held_names(observed: State, endpoints: Iterable[Endpoint]) -> dict[str, str]:
    """Endpoint name -> its interface name in the kernel, for endpoints observed in the
    sandbox their manifest puts them in (one that moves sandbox is made anew)."""
    held: dict[str, str] = {}
    resources = observed.resources
    for endpoint in endpoints:
        resource = resources.get(ResourceKey("Endpoint", endpoint.metadata.name))
        if resource is None or resource.attrs.get("sandbox") != endpoint.spec.sandbox:
            continue
        ifname = resource.attrs.get("ifname")
        if isinstance(ifname, str):
            held[endpoint.metadata.name] = ifname
    return held


def placements(
    manifests: Manifests, joined: Sequence[Endpoint], observed: State,
    memo: BuildMemo[str, dict[str, Placement]] | None = None,
    observed_endpoints: Mapping[str, object] | None = None,
) -> dict[str, Placement]:
    """Endpoint name -> its placement, for the endpoints that get an interface (`joined`:
    their networks already hold their address pools, defaults included).

    `memo` (its owner: `caching.PlanCaches`): each sandbox's placements of the last
    build, reused when its endpoints, their networks and their observed resources
    (`observed_endpoints`: endpoint name -> its resource in `observed`) are the very
    same objects; a placement is a function of those alone.
    """
    by_sandbox: dict[str, list[Endpoint]] = defaultdict(list)
    for endpoint in joined:
        by_sandbox[str(endpoint.spec.sandbox)].append(endpoint)
    if observed_endpoints is None:
        memo = None
    elif memo is not None:
        memo = memo.next_build()
    result: dict[str, Placement] = {}
    for sandbox, members in by_sandbox.items():
        result.update(place_members(manifests, sandbox, members, observed, memo,
                                    observed_endpoints))
    return result


def place_members(
    manifests: Manifests, sandbox: str, members: Sequence[Endpoint], observed: State,
    memo: BuildMemo[str, dict[str, Placement]] | None,
    observed_endpoints: Mapping[str, object] | None,
) -> dict[str, Placement]:
    """The placements of one sandbox's joined endpoints (`placements` for one sandbox;
    with `memo`, the caller has started the build)."""
    inputs: tuple[object, ...] = ()
    if memo is not None and observed_endpoints is not None:
        networks = manifests.networks
        for e in members:
            inputs += (e, networks[e.spec.network], observed_endpoints.get(e.metadata.name))
        kept = memo.get(sandbox, inputs)
        if kept is not None:
            return kept
    held = held_names(observed, members)
    if len(members) == 1:
        name = members[0].metadata.name
        mine = {name: place_alone(member_of(members[0], manifests), held.get(name))}
    else:
        mine = place_sandbox((member_of(e, manifests) for e in members), held)
    if memo is not None and observed_endpoints is not None:
        memo.put(sandbox, inputs, mine)
    return mine

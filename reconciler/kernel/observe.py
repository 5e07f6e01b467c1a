"""Reading the kernel into observation fragments, and assembling them: read-only.

Sandboxes are named netns whose `lo` carries cnm's marker (ifalias); the
links of networks and endpoints carry it too, and the driver that makes links
of their kind turns them back into resources (a bridge and veth pairs for the
bridge driver, say). Addresses come back from the interfaces themselves, so
IPAM needs no database. Nothing here writes to the kernel.

A `Fragment` holds what one namespace shows: `read_host` fills one from the
host namespace, `read_netns` from a named one, and `assemble_endpoints`
joins the two ends of each endpoint once the fragments are merged.
`kernel/live.py` keeps one fragment per namespace and is the only
observation there is: a one-shot command is a fresh one.

Kernel-made details are dropped so they never show as drift: IPv6
link-local and host-scope addresses, and every route except the default
routes of the main table.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers import HOST_END_KINDS, endpoint_driver, network_link_driver
from reconciler.drivers.names import DEFAULT
from reconciler.kernel import files, netns
from reconciler.kernel.rtnl import Link, Rtnl
from reconciler.naming import CNM_LINK_GROUP
from reconciler.state import AttrValue, Owner, Resource, ResourceKey, marker_digest

RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE = 0


@dataclass
class PeerEnd:
    """An endpoint's link inside its sandbox (drivers.base.PeerEnd)."""

    sandbox: str
    link: Link
    addresses: list[str]
    gateways: dict[int, list[str]]


@dataclass
class Fragment:
    """What observation read from one namespace (or, merged, from all of them)."""

    set_name: str
    resources: dict[ResourceKey, Resource] = field(default_factory=dict)
    occupied: dict[str, str] = field(default_factory=dict)
    orphans: set[str] = field(default_factory=set)
    reserved_prefixes: set[str] = field(default_factory=set)
    #: ifindex of each owned network's host link (a bridge) -> the network's name
    bridge_networks: dict[int, str] = field(default_factory=dict)
    host_ends: dict[str, Link] = field(default_factory=dict)
    host_link_names: dict[int, str] = field(default_factory=dict)
    peer_ends: dict[str, PeerEnd] = field(default_factory=dict)
    #: the digest of the applied desired attributes each object's marker carries
    applied_digests: dict[ResourceKey, str] = field(default_factory=dict)
    #: other sets' networks (shared_networks.py): ifindex of each one's bridge -> (its set,
    #: its name), and the network resources by name (their `set_name` the owner's)
    foreign_bridges: dict[int, tuple[str, str]] = field(default_factory=dict)
    borrowable: dict[str, Resource] = field(default_factory=dict)
    #: other sets' endpoints: (set, name) -> ifindex of the bridge their host end is a
    #: port of; and (set, name) -> the addresses their sandbox end holds
    foreign_ports: dict[tuple[str, str], int] = field(default_factory=dict)
    foreign_ends: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def add(self, kind: str, name: str, attrs: dict[str, AttrValue]) -> None:
        key = ResourceKey(kind, name)
        self.resources[key] = Resource(key, self.set_name, attrs)



def global_addresses(reader: Rtnl) -> dict[int, list[str]]:
    """ifindex -> sorted "address/prefixlen" of its global-scope addresses.

    Scope drops what the kernel makes by itself: IPv6 link-local (scope link)
    and loopback (scope host) addresses.
    """
    result: dict[int, list[str]] = defaultdict(list)
    for address in reader.addresses():
        if address.scope == RT_SCOPE_UNIVERSE:
            result[address.index].append(address.text)
    return {index: sorted(values) for index, values in result.items()}


def default_gateways(reader: Rtnl) -> dict[tuple[int, int], list[str]]:
    """(ifindex, IP version) -> gateways of the main table's default routes."""
    result: dict[tuple[int, int], list[str]] = defaultdict(list)
    for route in reader.routes(table=RT_TABLE_MAIN):
        if route.dst_len == 0 and route.table == RT_TABLE_MAIN and route.gateway and route.oif:
            result[(route.oif, route.version)].append(route.gateway)
    return {key: sorted(values) for key, values in result.items()}


def _describe_holder(owner: Owner | None, what: str) -> str:
    if owner is None:
        return f"{what} (not owned by cnm)"
    return f"{owner.kind}/{owner.name} of apply set '{owner.set_name}'"


def _keep_digest(seen: Fragment, owner: Owner, alias: str | None) -> None:
    digest = marker_digest(alias)
    if digest is not None:
        seen.applied_digests.setdefault(owner.key, digest)


def read_host(seen: Fragment, reader: Rtnl) -> None:
    """The host namespace's links and addresses into `seen` (`reader` may be a
    `HostTable` kept from notifications: it reads like a dump)."""
    links = reader.links()
    addresses = global_addresses(reader)
    seen.host_link_names = {link.index: link.name for link in links}
    vxlans: dict[int, str] = {}  # owned VXLAN devices -> their network
    for link in links:
        owner = Owner.parse(link.alias)
        if owner is None and link.group == CNM_LINK_GROUP and not link.alias:
            seen.orphans.add(f"link:{link.name}")
        mine = owner is not None and owner.set_name == seen.set_name
        if mine and owner is not None:
            _keep_digest(seen, owner, link.alias)
        driver = network_link_driver(link.kind)
        if mine and owner is not None and owner.kind == "Network" and driver is not None:
            seen.bridge_networks[link.index] = owner.name
            _add_network(seen, owner.name,
                         driver.observe_network(link, addresses.get(link.index, [])))
            if link.vxlan is not None:
                vxlans[link.index] = owner.name
        elif mine and owner is not None and owner.kind == "Endpoint" \
                and link.kind in HOST_END_KINDS:
            seen.host_ends[owner.name] = link
        else:
            seen.occupied[f"link:{link.name}"] = _describe_holder(owner, f"link {link.name}")
            if owner is not None and not mine:
                _note_foreign(seen, owner, link, driver, addresses.get(link.index, []))
    _reserve_host_prefixes(seen, reader, addresses)
    if vxlans:
        _read_remote_entries(seen, vxlans)


def _note_foreign(
    seen: Fragment, owner: Owner, link: Link, driver: Any, addresses: list[str]
) -> None:
    """Another set's network link (which this set's endpoints may join) or endpoint host
    end (a user of a network: shared_networks.py)."""
    if owner.kind == "Network" and driver is not None and link.vxlan is None:
        seen.foreign_bridges[link.index] = (owner.set_name, owner.name)
        known = seen.borrowable.get(owner.name)
        if known is None or owner.set_name < known.set_name:
            seen.borrowable[owner.name] = Resource(
                owner.key, owner.set_name, driver.observe_network(link, addresses))
    elif owner.kind == "Endpoint" and link.kind in HOST_END_KINDS and link.master:
        seen.foreign_ports[(owner.set_name, owner.name)] = link.master


def _add_network(seen: Fragment, name: str, attrs: dict[str, AttrValue]) -> None:
    """A network whose marker is on two links (an overlay's bridge and VXLAN device) is
    one resource: the default driver's view of the bridge, completed and overridden by
    the view of the other driver's link, whichever the dump lists first."""
    previous = seen.resources.get(ResourceKey("Network", name))
    if previous is not None:
        base, extra = (previous.attrs, attrs) if previous.get("driver") == DEFAULT \
            else (attrs, previous.attrs)
        attrs = {**base, **extra}
    seen.add("Network", name, attrs)


def _read_remote_entries(seen: Fragment, vxlans: dict[int, str]) -> None:
    """The permanent forwarding and neighbour entries of each owned VXLAN device, as
    "MAC VTEP" and "IP MAC" texts. Read with a socket of its own: the host's `reader`
    may be a table kept from link notifications, which carry no neighbour entries."""
    with Rtnl() as rtnl:
        for index, name in vxlans.items():
            key = ResourceKey("Network", name)
            resource = seen.resources[key]
            fdb = tuple(sorted(f"{mac} {vtep}" for mac, vtep in rtnl.fdb_entries(index)))
            neighbours = tuple(sorted(f"{ip} {mac}" for ip, mac in rtnl.neighbour_entries(index)))
            seen.resources[key] = Resource(key, seen.set_name, {
                **resource.attrs, "fdb": fdb, "neighbours": neighbours})


def _reserve_host_prefixes(
    seen: Fragment, reader: Rtnl, addresses: dict[int, list[str]]
) -> None:
    """Prefixes the host uses outside this set's bridges: default pools must avoid them."""
    mine = set(seen.bridge_networks)
    for index, texts in addresses.items():
        if index not in mine:
            seen.reserved_prefixes.update(str(ipaddress.ip_interface(t).network) for t in texts)
    for route in reader.routes():
        if route.table == RT_TABLE_MAIN and route.dst_len > 0 and route.dst is not None \
                and route.oif not in mine:
            prefix = ipaddress.ip_network(f"{route.dst}/{route.dst_len}", strict=False)
            seen.reserved_prefixes.add(str(prefix))


def read_netns(
    seen: Fragment, reader: Rtnl, name: str, identities: dict[str, Any],
    *, with_files: bool = True,
) -> None:
    """Read one named namespace into `seen`; `with_files=False` leaves the sandbox's
    files out (a worker process reading for another one: see kernel/parallel.py)."""
    links = reader.links()
    loopback = next((link for link in links if link.name == "lo"), None)
    owner = Owner.parse(loopback.alias) if loopback is not None else None
    identities[name] = (netns.identity(name), loopback.alias if loopback is not None else None)
    if owner is None or owner.kind != "Sandbox" or owner.set_name != seen.set_name:
        seen.occupied[f"netns:{name}"] = _describe_holder(owner, f"netns {name}")
        if owner is not None:
            _read_foreign_ends(seen, reader, links)
        return
    _keep_digest(seen, owner, loopback.alias if loopback is not None else None)
    attrs: dict[str, AttrValue] = {"netns": name, "lo_up": loopback is not None and loopback.up}
    if with_files:
        attrs.update(files.read_files(name))
    seen.add("Sandbox", owner.name, attrs)
    endpoint_links = []
    for link in links:
        link_owner = Owner.parse(link.alias)
        if (
            link.name != "lo"
            and link_owner is not None
            and link_owner.kind == "Endpoint"
            and link_owner.set_name == seen.set_name
        ):
            endpoint_links.append((link, link_owner))
            _keep_digest(seen, link_owner, link.alias)
    if not endpoint_links:
        return
    addresses = global_addresses(reader)
    gateways = default_gateways(reader)
    for link, link_owner in endpoint_links:
        seen.peer_ends[link_owner.name] = PeerEnd(
            sandbox=owner.name,
            link=link,
            addresses=addresses.get(link.index, []),
            gateways={v: gateways.get((link.index, v), []) for v in (4, 6)},
        )


def _read_foreign_ends(seen: Fragment, reader: Rtnl, links: list[Link]) -> None:
    """The addresses of another set's endpoints in its sandbox: a network shared between
    sets must not hand them out twice (read only where such endpoints are)."""
    ends = [(link, owner) for link in links if link.name != "lo"
            and (owner := Owner.parse(link.alias)) is not None and owner.kind == "Endpoint"]
    if not ends:
        return
    addresses = global_addresses(reader)
    for link, owner in ends:
        seen.foreign_ends[(owner.set_name, owner.name)] = tuple(addresses.get(link.index, []))


def network_links(seen: Fragment) -> dict[int, str]:
    """ifindex -> network name of every network link an endpoint of this set may be a
    port of: the set's own, and other sets' (shared_networks.py)."""
    return {**{i: name for i, (_, name) in seen.foreign_bridges.items()},
            **seen.bridge_networks}


def assemble_endpoints(seen: Fragment) -> None:
    """Endpoints from their ends, each turned into a resource by the driver of its links."""
    networks = network_links(seen)
    for name in sorted(set(seen.host_ends) | set(seen.peer_ends)):
        host, peer = seen.host_ends.get(name), seen.peer_ends.get(name)
        driver = endpoint_driver(host.kind if host is not None else None,
                                 peer.link.kind if peer is not None else None)
        attrs = driver.observe_endpoint(host, peer, networks, seen.host_link_names)
        shared = seen.foreign_bridges.get(host.master or -1) if host is not None else None
        if shared is not None and (host is None or host.master not in seen.bridge_networks):
            attrs["network_set"] = shared[0]  # a port of another set's network
        seen.add("Endpoint", name, attrs)


def sharers(seen: Fragment) -> dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]]:
    """`State.sharers`: "<owner set>/<network>" -> the other sets' endpoints that are
    ports of its link, with the addresses their sandbox end holds."""
    found: dict[str, list[tuple[str, str, tuple[str, ...]]]] = defaultdict(list)
    for (user_set, endpoint), master in seen.foreign_ports.items():
        own = seen.bridge_networks.get(master)
        network = (seen.set_name, own) if own is not None else seen.foreign_bridges.get(master)
        if network is not None:
            found[f"{network[0]}/{network[1]}"].append(
                (user_set, endpoint, seen.foreign_ends.get((user_set, endpoint), ())))
    return {key: tuple(sorted(users)) for key, users in sorted(found.items())}

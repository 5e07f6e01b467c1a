"""Read-only observation: the kernel alone rebuilds the state of an apply set.

Networks are bridges labelled with cnm's marker (ifalias); sandboxes are
named netns whose `lo` carries the marker; endpoints are veth pairs whose
two ends carry it. Addresses come back from the interfaces themselves, so
IPAM needs no database. Nothing here writes to the kernel.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from reconciler.kernel import files, netns
from reconciler.kernel.netlink import (
    Message,
    default_gateways,
    global_addresses,
    is_up,
    link_kind,
)
from reconciler.kernel.session import KernelSession
from reconciler.naming import CNM_LINK_GROUP
from reconciler.state import AttrValue, Owner, Resource, ResourceKey, State


@dataclass
class _PeerEnd:
    """The sandbox end of an endpoint's veth pair."""

    sandbox: str
    link: Message
    addresses: list[str]
    gateways: dict[int, list[str]]


@dataclass
class _Observation:
    set_name: str
    resources: dict[ResourceKey, Resource] = field(default_factory=dict)
    occupied: dict[str, str] = field(default_factory=dict)
    orphans: set[str] = field(default_factory=set)
    bridge_networks: dict[int, str] = field(default_factory=dict)
    host_ends: dict[str, Message] = field(default_factory=dict)
    peer_ends: dict[str, _PeerEnd] = field(default_factory=dict)

    def add(self, kind: str, name: str, attrs: dict[str, AttrValue]) -> None:
        key = ResourceKey(kind, name)
        self.resources[key] = Resource(key, self.set_name, attrs)


def observe(set_name: str, session: KernelSession) -> State:
    """The owned objects of `set_name`, and who holds every other kernel name."""
    seen = _Observation(set_name)
    _observe_host(seen, session)
    for name in netns.list_netns():
        _observe_netns(seen, session, name)
    _assemble_endpoints(seen)
    return State(set_name, seen.resources, seen.occupied, frozenset(seen.orphans))


def _describe_holder(owner: Owner | None, what: str, set_name: str) -> str:
    if owner is None:
        return f"{what} (not owned by cnm)"
    return f"{owner.kind}/{owner.name} of apply set '{owner.set_name}'"


def _observe_host(seen: _Observation, session: KernelSession) -> None:
    ipr = session.ipr(None)
    addresses = global_addresses(ipr)
    for link in ipr.link("dump"):
        name = str(link.get("ifname"))
        owner = Owner.parse(link.get("ifalias"))
        kind = link_kind(link)
        if owner is None and link.get("group") == CNM_LINK_GROUP:
            seen.orphans.add(f"link:{name}")
        mine = owner is not None and owner.set_name == seen.set_name
        if mine and owner is not None and owner.kind == "Network" and kind == "bridge":
            seen.bridge_networks[link["index"]] = owner.name
            seen.add("Network", owner.name, _network_attrs(link, addresses.get(link["index"], [])))
        elif mine and owner is not None and owner.kind == "Endpoint" and kind == "veth":
            seen.host_ends[owner.name] = link
        else:
            seen.occupied[f"link:{name}"] = _describe_holder(owner, f"link {name}", seen.set_name)


def _network_attrs(link: Message, addresses: list[str]) -> dict[str, AttrValue]:
    subnets = sorted({_subnet_of(a) for a in addresses})
    return {
        "driver": "bridge",
        "bridge": str(link.get("ifname")),
        "mtu": int(link.get("mtu")),
        "subnets": tuple(subnets),
        "addresses": tuple(addresses),
        "up": is_up(link),
    }


def _subnet_of(address: str) -> str:
    return str(ipaddress.ip_interface(address).network)


def _observe_netns(seen: _Observation, session: KernelSession, name: str) -> None:
    ipr = session.ipr(name)
    links = list(ipr.link("dump"))
    loopback = next((link for link in links if link.get("ifname") == "lo"), None)
    owner = Owner.parse(loopback.get("ifalias")) if loopback is not None else None
    if owner is None or owner.kind != "Sandbox" or owner.set_name != seen.set_name:
        seen.occupied[f"netns:{name}"] = _describe_holder(owner, f"netns {name}", seen.set_name)
        return
    attrs: dict[str, AttrValue] = {"netns": name, "lo_up": loopback is not None and is_up(loopback)}
    attrs.update(files.read_files(name))
    seen.add("Sandbox", owner.name, attrs)
    endpoint_links = [
        (link, Owner.parse(link.get("ifalias"))) for link in links if link.get("ifname") != "lo"
    ]
    endpoint_links = [
        (link, o) for link, o in endpoint_links
        if o is not None and o.kind == "Endpoint" and o.set_name == seen.set_name
    ]
    if not endpoint_links:
        return
    addresses = global_addresses(ipr)
    gateways = default_gateways(ipr)
    for link, link_owner in endpoint_links:
        assert link_owner is not None
        index = link["index"]
        seen.peer_ends[link_owner.name] = _PeerEnd(
            sandbox=owner.name,
            link=link,
            addresses=addresses.get(index, []),
            gateways={v: gateways.get((index, v), []) for v in (4, 6)},
        )


def _joined(values: list[str]) -> str | None:
    return ", ".join(values) if values else None


def _assemble_endpoints(seen: _Observation) -> None:
    for name in sorted(set(seen.host_ends) | set(seen.peer_ends)):
        host, peer = seen.host_ends.get(name), seen.peer_ends.get(name)
        attrs: dict[str, AttrValue] = {
            "veth": str(host.get("ifname")) if host is not None else None,
            "network": seen.bridge_networks.get(host.get("master")) if host is not None else None,
            "sandbox": peer.sandbox if peer is not None else None,
            "up": host is not None and peer is not None and is_up(host) and is_up(peer.link),
        }
        if peer is not None:
            host_mtu = int(host.get("mtu")) if host is not None else None
            peer_mtu = int(peer.link.get("mtu"))
            v4 = [a for a in peer.addresses if ":" not in a]
            v6 = [a for a in peer.addresses if ":" in a]
            attrs.update(
                {
                    "ifname": str(peer.link.get("ifname")),
                    "mtu": peer_mtu if host_mtu in (None, peer_mtu) else f"{host_mtu}/{peer_mtu}",
                    "mac": str(peer.link.get("address")),
                    "ipv4": _joined(v4),
                    "ipv6": _joined(v6),
                    "gateway4": _joined(peer.gateways[4]),
                    "gateway6": _joined(peer.gateways[6]),
                }
            )
        seen.add("Endpoint", name, attrs)

"""The rules a whole state implies, item by item (`wanted_rules`), the tables they
live in, and the few attributes of a resource its rules are built from."""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from reconciler.firewall.network_rules import (
    icc_port_rules,
    icc_rules,
    isolation_rules,
    localhost_rules,
    masquerade_rules,
)
from reconciler.firewall.ports import PortMap, port_rules
from reconciler.firewall.table import TABLE, Rule, comment_of
from reconciler.state import Drift, Resource, ResourceKey, State

ItemKey = tuple[ResourceKey, str]
#: The items of a network's rules (the attribute of each is named alike, but `isolation`'s
#: is `internal`).
NETWORK_ITEMS = ("isolation", "icc", "masquerade", "localhost")
#: item -> the rules it must have; None: leave whatever the kernel has (value unknown)
Wanted = dict[ItemKey, list[Rule] | None]


def text_attr(resource: Resource, name: str) -> str | None:
    value = resource.get(name)
    return value if isinstance(value, str) else None


def subnets_of(resource: Resource) -> list[str]:
    value = resource.get("subnets")
    return [str(v) for v in value] if isinstance(value, tuple) else []


def addresses_of(resource: Resource) -> dict[int, str]:
    """IP version -> the endpoint's address (without prefix length)."""
    found: dict[int, str] = {}
    for version in (4, 6):
        held = resource.get(f"ipv{version}")  # a tuple of "address/prefix"
        if isinstance(held, tuple) and held:
            found[version] = str(ipaddress.ip_interface(str(held[0])).ip)
    return found


def veths_by_network(state: State) -> dict[str, list[str]]:
    veths: dict[str, list[str]] = defaultdict(list)
    for endpoint in state.of_kind("Endpoint"):
        network, veth = endpoint.get("network"), endpoint.get("veth")
        if isinstance(network, str) and isinstance(veth, str):
            veths[network].append(veth)
    return veths


def is_firewalled(resource: Resource) -> bool:
    return resource.key.kind == "Network" and "internal" in resource.attrs


def needed_tables(resource: Resource) -> list[str]:
    """The nftables tables a desired resource's rules live in (for conflict checks)."""
    if not is_firewalled(resource):
        return []
    tables = [f"nft:table inet {TABLE}"]
    if resource.get("icc") is False:
        tables.append(f"nft:table bridge {TABLE}")
    return tables


def wanted_rules(state: State) -> Wanted:
    """Every item of every resource of `state`, with the rules its current value implies;
    a drift implies none (its rules are left as they are)."""
    wanted: Wanted = {}
    veths = veths_by_network(state)
    for resource in state:
        if is_firewalled(resource):
            owner = resource.owner
            bridge = text_attr(resource, "bridge")
            if bridge is None:
                for item in NETWORK_ITEMS:
                    wanted[(resource.key, item)] = None
                continue
            subnets = subnets_of(resource)
            mine = veths.get(resource.key.name, [])
            internal, icc, masq = (resource.get(a) for a in ("internal", "icc", "masquerade"))
            wanted[(resource.key, "isolation")] = (
                isolation_rules(comment_of(owner, "isolation"), bridge, subnets, internal)
                if isinstance(internal, bool) else None
            )
            wanted[(resource.key, "icc")] = (
                icc_rules(comment_of(owner, "icc"), bridge, mine, icc)
                if isinstance(icc, bool) else None
            )
            wanted[(resource.key, "masquerade")] = (
                masquerade_rules(comment_of(owner, "masquerade"), bridge, subnets, masq)
                if isinstance(masq, bool) else None
            )
            localhost = resource.get("localhost")
            if "localhost" in resource.attrs:
                wanted[(resource.key, "localhost")] = (
                    localhost_rules(comment_of(owner, "localhost"), bridge, localhost)
                    if isinstance(localhost, bool) else None
                )
        veth = text_attr(resource, "veth")
        if resource.key.kind == "Endpoint" and resource.get("icc") is False and veth:
            wanted[(resource.key, "icc")] = icc_port_rules(comment_of(resource.owner, "icc"),
                                                           veth)
        ports = resource.get("ports")
        if resource.key.kind == "Endpoint" and isinstance(ports, tuple) and ports:
            owner = resource.owner
            addresses = addresses_of(resource)
            for value in ports:
                if isinstance(value, Drift):
                    wanted[(resource.key, f"port {value.subject}")] = None
                    continue
                text = str(value)
                port = PortMap.parse(text)
                item = f"port {text}"
                wanted[(resource.key, item)] = (
                    None if port is None
                    else port_rules(comment_of(owner, item), port, addresses)
                )
    return wanted


def bridge_names(state: State) -> list[str]:
    """The bridges of `state`'s networks (whose `route_localnet` observation reads)."""
    return [bridge for n in state.of_kind("Network") if (bridge := text_attr(n, "bridge"))]


def wanted_localnet(state: State) -> dict[str, bool]:
    """Bridge name -> its `route_localnet` as `state` asks, for networks that say."""
    return {bridge: on for n in state.of_kind("Network")
            if (bridge := text_attr(n, "bridge")) is not None
            and isinstance(on := n.get("route_localnet"), bool)}

"""Validation rules that look at one object at a time (and the objects it names).

Each `check_*` reports through a `Reporter`; none raises. What the pydantic
models already guarantee (types, canonical subnets, DNS-label names) is not
checked again here: these are the rules that need the kernel's limits, the
network an endpoint names, or several fields of one object together.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from reconciler import naming
from reconciler.drivers import driver_for, network_problems
from reconciler.errors import show
from reconciler.resource_key import ResourceKey
from reconciler.validation.report import Reporter

if TYPE_CHECKING:  # only annotations: validation also runs on plain_model's objects
    from reconciler.model import (
        DnsConfig,
        Endpoint,
        IPAddress,
        IpamPool,
        IPNetwork,
        Network,
        Sandbox,
    )

#: Longest hostname / domainname the kernel stores (__NEW_UTS_LEN).
UTS_NAME_MAX = 64
DNS_NAME_MAX = 253

_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME_RE = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$")
_RESOLV_OPTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(?::[0-9]+)?$")


def check_network(report: Reporter, network: Network) -> None:
    """A network's driver options, bridge name and address pools."""
    key, spec = network.key, network.spec
    check_network_driver_options(report, network)
    if spec.bridge is not None:
        _check_ifname(report, key, "spec.bridge", spec.bridge)
    for index, pool in enumerate(spec.ipam):
        _check_pool(report, key, f"spec.ipam.{index}", pool)
    _check_overlaps_within(report, network)


def check_network_driver_options(report: Reporter, network: Network) -> None:
    """The spec fields each driver takes or needs, as the network's driver states them."""
    key, spec = network.key, network.spec
    for path, message in network_problems(network):
        report.add(key, path, message)
    for option in driver_for(spec.driver).interface_options:
        value = getattr(spec, option)
        if value is not None:
            _check_ifname(report, key, f"spec.{option}", value)


def _check_ifname(report: Reporter, key: ResourceKey, path: str, name: str) -> None:
    if not naming.is_valid_ifname(name):
        report.add(
            key,
            path,
            f"{show(name)} is not a valid interface name (1-{naming.IFNAMSIZ} characters: "
            "letters, digits, '_', '.' and '-')",
        )


def _first_host(subnet: IPNetwork) -> IPAddress:
    return subnet.network_address + 1


def _is_broadcast(address: IPAddress, subnet: IPNetwork) -> bool:
    return subnet.version == 4 and address == subnet.broadcast_address


def _inside(address: IPAddress, subnet: IPNetwork) -> bool:
    return address.version == subnet.version and address in subnet


def _check_pool(report: Reporter, key: ResourceKey, base: str, pool: IpamPool) -> None:
    subnet = pool.subnet
    if subnet.prefixlen > subnet.max_prefixlen - 2:
        smallest = "/30" if subnet.version == 4 else "/126"
        report.add(
            key,
            f"{base}.subnet",
            f"subnet {subnet} has no room for a gateway and endpoints; use {smallest} or larger",
        )
        return
    if pool.gateway is not None:
        _check_gateway(report, key, f"{base}.gateway", pool.gateway, subnet)
    if pool.ip_range is not None and not (
        pool.ip_range.version == subnet.version and pool.ip_range.subnet_of(subnet)  # type: ignore[arg-type]
    ):
        report.add(
            key,
            f"{base}.ipRange",
            f"ipRange {pool.ip_range} is outside subnet {subnet}; use a range inside it",
        )
    for name, address in sorted(pool.aux_addresses.items()):
        if not _inside(address, subnet):
            report.add(
                key,
                f"{base}.auxAddresses.{name}",
                f"auxAddress {name}={address} is outside subnet {subnet}; use an address inside it",
            )


def _check_gateway(
    report: Reporter, key: ResourceKey, path: str, gateway: IPAddress, subnet: IPNetwork
) -> None:
    hint = f"use a host address such as {_first_host(subnet)}"
    if not _inside(gateway, subnet):
        report.add(key, path, f"gateway {gateway} is outside subnet {subnet}; {hint}")
    elif gateway == subnet.network_address:
        report.add(key, path, f"gateway {gateway} is the network address of {subnet}; {hint}")
    elif _is_broadcast(gateway, subnet):
        report.add(key, path, f"gateway {gateway} is the broadcast address of {subnet}; {hint}")


def _check_overlaps_within(report: Reporter, network: Network) -> None:
    pools = network.spec.ipam
    for later in range(len(pools)):
        for earlier in range(later):
            if overlap(pools[earlier].subnet, pools[later].subnet):
                report.add(
                    network.key,
                    f"spec.ipam.{later}.subnet",
                    f"subnet {pools[later].subnet} overlaps subnet {pools[earlier].subnet} "
                    f"(spec.ipam.{earlier}) of the same network; subnets must not overlap",
                )
                break


def overlap(a: IPNetwork, b: IPNetwork) -> bool:
    """Whether two subnets share an address (never across families)."""
    return a.version == b.version and a.overlaps(b)


def pool_families(network: Network | None) -> set[int]:
    """The IP versions (4, 6) of `network`'s pools."""
    return set() if network is None else {p.subnet.version for p in network.spec.ipam}


def check_sandbox(report: Reporter, sandbox: Sandbox) -> None:
    """A sandbox's netns name and the contents of its hostname, resolv.conf and hosts."""
    key, spec = sandbox.key, sandbox.spec
    if spec.netns is not None and not naming.is_valid_netns_name(spec.netns):
        report.add(
            key,
            "spec.netns",
            f"{show(spec.netns)} is not a safe netns name (1-63 characters: letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-'; it becomes a path under /run/netns)",
        )
    for path, value in (("spec.hostname", spec.hostname), ("spec.domainname", spec.domainname)):
        if value is not None:
            _check_dns_name(report, key, path, value, UTS_NAME_MAX)
    if spec.dns is not None:
        _check_dns_config(report, key, spec.dns)
    for index, entry in enumerate(spec.extra_hosts):
        message = _extra_host_problem(entry)
        if message:
            report.add(key, f"spec.extraHosts.{index}", message)


def _dns_name_problem(value: str, limit: int = DNS_NAME_MAX) -> str | None:
    if not _DNS_NAME_RE.fullmatch(value):
        return (
            f"{show(value)} is not a valid DNS name (labels of letters, digits and '-', "
            "joined by '.', each at most 63 characters)"
        )
    if len(value) > limit:
        return f"{show(value)} is {len(value)} characters long; the limit is {limit}"
    return None


def _check_dns_name(
    report: Reporter, key: ResourceKey, path: str, value: str, limit: int = DNS_NAME_MAX
) -> None:
    message = _dns_name_problem(value, limit)
    if message:
        report.add(key, path, message)


def _check_dns_config(report: Reporter, key: ResourceKey, dns: DnsConfig) -> None:
    for index, domain in enumerate(dns.search):
        _check_dns_name(report, key, f"spec.dns.search.{index}", domain)
    for index, option in enumerate(dns.options):
        if not _RESOLV_OPTION_RE.fullmatch(option):
            report.add(
                key,
                f"spec.dns.options.{index}",
                f"{show(option)} is not a resolv.conf option (e.g. ndots:1, edns0, rotate)",
            )


def _extra_host_problem(entry: str) -> str | None:
    """`name:ip`; split at the first colon so IPv6 addresses need no brackets."""
    name, colon, address = entry.partition(":")
    if not colon:
        return f'{show(entry)} is not name:ip (e.g. "db.local:10.89.0.20")'
    problem = _dns_name_problem(name)
    if problem:
        return f"host name in {show(entry)}: {problem}"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return (
            f"{show(address)} in {show(entry)} is not an IP address "
            '(e.g. "db.local:10.89.0.20" or "db.local:fd00::20")'
        )
    return None


def check_endpoint(report: Reporter, endpoint: Endpoint) -> None:
    """An endpoint's references, names, addresses and ports, against the network it joins."""
    key, spec = endpoint.key, endpoint.spec
    manifests = report.manifests
    if not report.external_networks:
        _check_reference(report, key, "spec.network", "Network", spec.network,
                         manifests.networks)
    if spec.sandbox is not None:
        _check_reference(report, key, "spec.sandbox", "Sandbox", spec.sandbox, manifests.sandboxes)
    if spec.ifname is not None:
        _check_ifname(report, key, "spec.ifname", spec.ifname)
    for index, alias in enumerate(spec.aliases):
        _check_dns_name(report, key, f"spec.aliases.{index}", alias)
    network = manifests.networks.get(spec.network)
    if network is None:
        return
    driver = driver_for(network.spec.driver)
    if driver.has_interfaces:
        for path, address in (
            ("spec.ipv4Address", spec.ipv4_address),
            ("spec.ipv6Address", spec.ipv6_address),
        ):
            if address is not None:
                _check_static_address(report, key, path, address, network)
    for path, message in driver.check_endpoint(endpoint, network):
        report.add(key, path, message)
    if driver.publishes_ports:
        _check_ports(report, endpoint, network)


def _check_ports(report: Reporter, endpoint: Endpoint, network: Network) -> None:
    """Published ports must be reachable: not on internal networks, hostIP a usable
    unicast address of a family the network has a pool of."""
    families = pool_families(network) or {4}  # no ipam: a default pool, which is IPv4
    for index, port in enumerate(endpoint.spec.ports):
        if network.spec.internal:
            report.add(
                endpoint.key,
                f"spec.ports.{index}",
                f"{network.key} is internal (no traffic enters or leaves it), so ports cannot be "
                "published from it; remove spec.ports or use a network that is not internal",
            )
            continue
        host_ip = port.host_ip
        if host_ip is None:
            continue
        path = f"spec.ports.{index}.hostIP"
        if host_ip.is_loopback and host_ip.version == 6:
            report.add(
                endpoint.key,
                path,
                f"{host_ip} is IPv6 loopback: the kernel never routes ::1 out of the host "
                "(no route_localnet for IPv6); use 127.0.0.1 or another address of this host",
            )
        elif host_ip.is_multicast or host_ip.is_link_local or (
            host_ip.version == 4 and int(host_ip) == 0xFFFFFFFF
        ):
            report.add(
                endpoint.key,
                path,
                f"{host_ip} cannot receive published traffic; use an address of this host, "
                f"or {'0.0.0.0' if host_ip.version == 4 else '::'} for all of them",
            )
        elif host_ip.version not in families:
            report.add(
                endpoint.key,
                path,
                f"{host_ip} is an IPv{host_ip.version} address but {network.key} has no "
                f"IPv{host_ip.version} pool, so the endpoint has no address to forward to",
            )


def _check_reference(
    report: Reporter,
    key: ResourceKey,
    path: str,
    kind: str,
    name: str,
    known: Mapping[str, object],
) -> None:
    if name in known or report.may_be_unloaded(ResourceKey(kind, name)):
        return
    names = list(known)
    listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    hint = f"known: {listed}" if names else f"no {kind} is defined"
    message = f"unknown {kind.lower()} {show(name)}; define a {kind} of that name ({hint})"
    report.add(key, path, message)


def _check_static_address(
    report: Reporter, key: ResourceKey, path: str, address: IPAddress, network: Network
) -> None:
    family = f"IPv{address.version}"
    pools = [p for p in network.spec.ipam if p.subnet.version == address.version]
    pool = next((p for p in pools if address in p.subnet), None)
    if not pools:
        report.add(
            key,
            path,
            f"{address} cannot be used: {network.key} has no {family} pool "
            f"(add one to its spec.ipam, or remove {path.split('.')[-1]})",
        )
        return
    if pool is None:
        subnets = ", ".join(str(p.subnet) for p in pools)
        report.add(
            key,
            path,
            f"{address} is not inside an {family} pool of {network.key} (subnets: {subnets})",
        )
        return
    message = _reservation_problem(address, pool, network)
    if message:
        report.add(key, path, message)


def _reservation_problem(address: IPAddress, pool: IpamPool, network: Network) -> str | None:
    """Why a static address collides with something the network keeps for itself."""
    subnet = pool.subnet
    if address == pool.effective_gateway():
        return f"{address} is the gateway of {network.key}; pick another address"
    for other in network.spec.ipam:
        for name, reserved in sorted(other.aux_addresses.items()):
            if reserved == address:
                return (
                    f"{address} is reserved by auxAddresses.{name} of {network.key}; "
                    "pick another address"
                )
    if address == subnet.network_address:
        return f"{address} is the network address of {subnet}; pick a host address"
    if _is_broadcast(address, subnet):
        return f"{address} is the broadcast address of {subnet}; pick a host address"
    return None

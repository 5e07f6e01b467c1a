"""Validation rules across objects: names, subnets, addresses and ports that must not clash.

When two objects clash, the problem is reported once, on the later one in name
order, unless only the earlier one chose the clashing value itself (an
explicit `spec.bridge` or `spec.netns`): the message points at what to change,
and names the other side with its own `file:line` (`Reporter.where`), since the
two may be in different files and either may be the one just edited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from reconciler.drivers import driver_for, is_cluster_scoped
from reconciler.errors import ManifestProblem
from reconciler.validation.objects import overlap, pool_families
from reconciler.validation.report import Reporter

if TYPE_CHECKING:  # only annotations: validation also runs on plain_model's objects
    from reconciler.model import Endpoint, IPAddress, IPNetwork, Network, PortMapping, Sandbox


def check_duplicate_names(report: Reporter) -> None:
    for obj, source in report.manifests.duplicates:
        first = report.manifests.source_of(obj.key)
        where = first.file if first.line is None else f"{first.file}:{first.line}"
        report.problems.append(
            ManifestProblem(
                source.file,
                source.line,
                str(obj.key),
                "metadata.name",
                f"duplicate name: {obj.key} is already defined at {where}; "
                f"names must be unique per kind",
            )
        )


_Named = TypeVar("_Named", "Network", "Sandbox")


def _pick_culprit(
    first: _Named, second: _Named, explicit: Callable[[_Named], bool]
) -> tuple[_Named, _Named]:
    """Blame the object that chose the clashing name itself; else the later one."""
    if not explicit(second) and explicit(first):
        return first, second
    return second, first


def _check_subnet_overlaps(report: Reporter) -> None:
    seen: list[tuple[Network, int, IPNetwork]] = []
    for network in report.manifests.networks.values():
        mine = [(network, i, pool.subnet) for i, pool in enumerate(network.spec.ipam)]
        for _, index, subnet in mine:
            clash = next((s for s in seen if overlap(s[2], subnet)), None)
            if clash is not None:
                report.add(
                    network.key,
                    f"spec.ipam.{index}.subnet",
                    f"subnet {subnet} overlaps subnet {clash[2]} of {clash[0].key} "
                    f"(spec.ipam.{clash[1]}, "
                    f"{report.where(clash[0].key, f'spec.ipam.{clash[1]}.subnet')}); "
                    "pick a subnet that does not overlap",
                )
        seen += mine


def _check_host_sandboxes(report: Reporter) -> None:
    """A sandbox on a host network is the host namespace itself: it cannot join others."""
    manifests = report.manifests
    networks = manifests.networks
    # only a sandbox with an endpoint on a host network can break the rule: look at those
    host_networks = [name for name, network in networks.items()
                     if driver_for(network.spec.driver).shares_host_namespace]
    candidates = {str(e.spec.sandbox) for name in host_networks
                  for e in manifests.endpoints_of_network(name) if e.spec.sandbox is not None}
    for name in sorted(candidates & manifests.sandboxes.keys()):
        sandbox = manifests.sandboxes[name]
        joined = manifests.endpoints_of_sandbox(name)
        shares_host = {
            e.metadata.name: driver_for(networks[e.spec.network].spec.driver)
            .shares_host_namespace
            for e in joined if e.spec.network in networks
        }
        if any(shares_host.values()) and len(shares_host) > 1:
            others = sorted(name for name, shares in shares_host.items() if not shares)
            hosts = sorted(name for name, shares in shares_host.items() if shares)
            culprit = manifests.endpoints[(others or hosts[1:])[0]]
            report.add(culprit.key, "spec.sandbox",
                       f"{sandbox.key} joins a host network (Endpoint/{hosts[0]}), so it is the "
                       "host namespace and cannot join other networks; use another sandbox")


def _sandboxes_with(report: Reporter, wanted: Callable[[Endpoint], bool]) -> list[str]:
    """The sandboxes (in name order) holding an endpoint for which `wanted` is true: the
    rules below only look at such endpoints, so other sandboxes cannot fail them."""
    sandboxes = report.manifests.sandboxes
    return sorted({str(e.spec.sandbox) for e in report.manifests.endpoints.values()
                   if e.spec.sandbox in sandboxes and wanted(e)})


def _check_bridge_names(report: Reporter) -> None:
    """Two networks cannot be the same host link (two bridges of one name)."""
    owners: dict[str, Network] = {}
    for network in report.manifests.networks.values():
        link = driver_for(network.spec.driver).network_link_name(network)
        if link is None:
            continue
        first = owners.setdefault(link, network)
        if first is network:
            continue
        culprit, other = _pick_culprit(first, network, lambda n: n.spec.bridge is not None)
        report.add(
            culprit.key,
            "spec.bridge",
            f"bridge name {link} is also used by {other.key} "
            f"({report.where(other.key, 'spec.bridge')}); set a distinct spec.bridge",
        )


def _check_netns_names(report: Reporter) -> None:
    owners: dict[str, Sandbox] = {}
    for sandbox in report.manifests.sandboxes.values():
        first = owners.setdefault(sandbox.netns_name, sandbox)
        if first is sandbox:
            continue
        culprit, other = _pick_culprit(first, sandbox, lambda s: s.spec.netns is not None)
        report.add(
            culprit.key,
            "spec.netns",
            f"netns name {sandbox.netns_name} is also used by {other.key} "
            f"({report.where(other.key, 'spec.netns')}); set a distinct spec.netns",
        )


def _check_duplicate_addresses(report: Reporter) -> None:
    # only static addresses can clash: networks without one are skipped
    static = {e.spec.network for e in report.manifests.endpoints.values()
              if e.spec.ipv4_address is not None or e.spec.ipv6_address is not None}
    for name in report.manifests.networks:
        if name not in static:
            continue
        holders: dict[IPAddress, Endpoint] = {}
        for endpoint in report.manifests.endpoints_of_network(name):
            spec = endpoint.spec
            for path, address in (
                ("spec.ipv4Address", spec.ipv4_address),
                ("spec.ipv6Address", spec.ipv6_address),
            ):
                if address is None:
                    continue
                first = holders.setdefault(address, endpoint)
                if first is not endpoint:
                    report.add(
                        endpoint.key,
                        path,
                        f"{address} is already used by {first.key} "
                        f"({report.where(first.key, path)}) on Network/{name}; "
                        "pick another address",
                    )


def _host_ipsoverlap(a: IPAddress | None, b: IPAddress | None) -> bool:
    """No hostIP means every address of both families; 0.0.0.0 / :: every one of its family."""
    if a is None or b is None:
        return True
    if a.version != b.version:
        return False
    return a == b or a.is_unspecified or b.is_unspecified


def _check_host_ports(report: Reporter) -> None:
    published: dict[tuple[str, int], list[tuple[Endpoint, int, PortMapping]]] = defaultdict(list)
    for endpoint in report.manifests.endpoints.values():
        for index, port in enumerate(endpoint.spec.ports):
            earlier = published[(port.protocol, port.host_port)]
            clashes = (e for e in earlier if _host_ipsoverlap(e[2].host_ip, port.host_ip))
            clash = next(clashes, None)
            if clash is not None:
                where = "all addresses" if port.host_ip is None else str(port.host_ip)
                report.add(
                    endpoint.key,
                    f"spec.ports.{index}.hostPort",
                    f"host port {port.protocol}/{port.host_port} on {where} is already published "
                    f"by {clash[0].key} (spec.ports.{clash[1]}, "
                    f"{report.where(clash[0].key, f'spec.ports.{clash[1]}.hostPort')}); "
                    "pick another hostPort or hostIP",
                )
            earlier.append((endpoint, index, port))


def _check_ifnames_in_sandbox(report: Reporter) -> None:
    """Hand-written names only: the defaults (interface_defaults) avoid those and each other."""
    for name in _sandboxes_with(report, lambda e: e.spec.ifname is not None):
        holders: dict[str, Endpoint] = {}
        for endpoint in report.manifests.endpoints_of_sandbox(name):
            if endpoint.spec.ifname is None:
                continue
            first = holders.setdefault(endpoint.spec.ifname, endpoint)
            if first is not endpoint:
                report.add(
                    endpoint.key,
                    "spec.ifname",
                    f"ifname {endpoint.spec.ifname} is already used in Sandbox/{name} by "
                    f"{first.key} ({report.where(first.key, 'spec.ifname')}); "
                    "set a distinct spec.ifname",
                )


def _check_gateways(report: Reporter) -> None:
    """`gateway: true` is an explicit override: once per sandbox and IP version, and never
    on an internal network (which gives no default route)."""
    manifests = report.manifests
    for name in _sandboxes_with(report, lambda e: e.spec.gateway is True):
        carriers: dict[int, Endpoint] = {}
        for endpoint in manifests.endpoints_of_sandbox(name):
            if endpoint.spec.gateway is not True:
                continue
            network = manifests.networks.get(endpoint.spec.network)
            if network is not None and network.spec.internal:
                report.add(
                    endpoint.key,
                    "spec.gateway",
                    f"{network.key} is internal: it gives no default route; remove "
                    "gateway: true (or make the network not internal)",
                )
                continue
            if network is not None and is_cluster_scoped(network.spec.driver):
                continue  # an overlay network gives no default route
            for version in sorted(pool_families(network)):
                first = carriers.setdefault(version, endpoint)
                if first is not endpoint:
                    report.add(
                        endpoint.key,
                        "spec.gateway",
                        f"{first.key} ({report.where(first.key, 'spec.gateway')}) already "
                        f"carries the IPv{version} default route of Sandbox/{name}; "
                        "set gateway: true on one endpoint only, or use gwPriority",
                    )


CROSS_CHECKS: tuple[Callable[[Reporter], None], ...] = (
    _check_subnet_overlaps,
    _check_bridge_names,
    _check_netns_names,
    _check_duplicate_addresses,
    _check_host_ports,
    _check_ifnames_in_sandbox,
    _check_gateways,
    _check_host_sandboxes,
)

"""Manifests (plus the addresses the kernel shows now) -> the desired `State`.

Pure: the observed state is only read for the addresses endpoints already
hold, so that IPAM keeps them (the kernel is the allocation database).
"""

from __future__ import annotations

import functools
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reconciler import naming
from reconciler.drivers import EndpointContext, driver_for
from reconciler.errors import ManifestError
from reconciler.ipam import AllocationError, Assignment, IPAddress, allocate
from reconciler.model import Endpoint, Manifests, Sandbox
from reconciler.sandbox_files import (
    HostEntry,
    host_line,
    hostname_file,
    hosts_file,
    resolv_conf_file,
)
from reconciler.state import AttrValue, Resource, State


@functools.lru_cache(maxsize=1 << 16)
def _interface_ip(text: str) -> IPAddress:
    """The address of "address/prefix" (cached: `cnm watch` parses the same ones each time)."""
    return ipaddress.ip_interface(text).ip


def held_addresses(observed: State) -> dict[str, list[IPAddress]]:
    """Addresses each observed endpoint's interface holds now, by endpoint name."""
    held: dict[str, list[IPAddress]] = {}
    for resource in observed.of_kind("Endpoint"):
        addresses: list[IPAddress] = []
        for attr in ("ipv4", "ipv6"):
            value = resource.get(attr)
            if isinstance(value, str):
                for text in value.split(","):
                    try:
                        addresses.append(_interface_ip(text.strip()))
                    except ValueError:
                        continue
        held[resource.key.name] = addresses
    return held


def joined_endpoints(manifests: Manifests) -> list[Endpoint]:
    """Endpoints that get an interface: those that name a sandbox."""
    return [e for e in manifests.endpoints.values() if e.spec.sandbox is not None]


def build_desired(manifests: Manifests, set_name: str, observed: State) -> State:
    """The state the kernel should be in for `manifests` as apply set `set_name`."""
    joined = joined_endpoints(manifests)
    try:
        names = [e.metadata.name for e in joined]
        assignments = allocate(manifests, held_addresses(observed), names)
    except AllocationError as exc:
        raise ManifestError([exc.problem]) from exc
    resources: list[Resource] = []
    for network in manifests.networks.values():
        attrs = driver_for(network.spec.driver).network_attrs(network)
        resources.append(Resource(network.key, set_name, attrs))
    directory = _Directory.of(manifests, assignments)
    for sandbox in manifests.sandboxes.values():
        resources.append(
            Resource(sandbox.key, set_name, _sandbox_attrs(sandbox, assignments, directory))
        )
    for endpoint in joined:
        network = manifests.networks[endpoint.spec.network]
        sandbox = manifests.sandboxes[str(endpoint.spec.sandbox)]
        ctx = EndpointContext(
            endpoint=endpoint,
            network=network,
            sandbox=sandbox,
            assignment=assignments[endpoint.metadata.name],
            veth=naming.host_veth_name(set_name, endpoint.metadata.name),
        )
        attrs = driver_for(network.spec.driver).endpoint_attrs(ctx)
        resources.append(Resource(endpoint.key, set_name, attrs))
    return State(set_name, {r.key: r for r in resources})


def _addresses(assignment: Assignment) -> list[str]:
    return [str(iface.ip) for iface in (assignment.ipv4, assignment.ipv6) if iface is not None]


@dataclass(frozen=True)
class _NetworkHosts:
    """The /etc/hosts lines of every endpoint of one network, in name order, formatted once.

    A sandbox's peer lines are this text minus its own endpoints' spans, so building
    every sandbox's hosts file costs the size of the files, not a loop per peer.
    """

    text: str
    spans: Mapping[str, tuple[int, int]]  # endpoint name -> [start, end) of its lines

    def without(self, names: Iterable[str]) -> str:
        cuts = sorted(self.spans[n] for n in names if n in self.spans)
        if not cuts:
            return self.text
        parts: list[str] = []
        position = 0
        for start, end in cuts:
            parts.append(self.text[position:start])
            position = end
        parts.append(self.text[position:])
        return "".join(parts)


@dataclass(frozen=True)
class _Directory:
    """Who is where, computed once per build so each sandbox costs O(its own peers)."""

    by_sandbox: Mapping[str, list[Endpoint]]
    hosts_by_network: Mapping[str, _NetworkHosts]

    @classmethod
    def of(cls, manifests: Manifests, assignments: Mapping[str, Assignment]) -> _Directory:
        by_sandbox: dict[str, list[Endpoint]] = defaultdict(list)
        lines: dict[str, list[str]] = defaultdict(list)
        spans: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        sizes: dict[str, int] = defaultdict(int)
        for endpoint in manifests.endpoints.values():  # name order
            name = endpoint.metadata.name
            if name not in assignments:
                continue
            by_sandbox[str(endpoint.spec.sandbox)].append(endpoint)
            names = (name, *endpoint.spec.aliases)
            network = endpoint.spec.network
            text = "".join(host_line(HostEntry(a, names)) for a in _addresses(assignments[name]))
            if text:
                start = sizes[network]
                lines[network].append(text)
                sizes[network] = start + len(text)
                spans[network][name] = (start, start + len(text))
        hosts = {net: _NetworkHosts("".join(lines[net]), spans[net]) for net in lines}
        return cls(by_sandbox, hosts)


def _sandbox_attrs(
    sandbox: Sandbox, assignments: Mapping[str, Assignment], directory: _Directory
) -> dict[str, AttrValue]:
    own_endpoints = directory.by_sandbox.get(sandbox.metadata.name, [])
    own = [a for e in own_endpoints for a in _addresses(assignments[e.metadata.name])]
    return {
        "netns": sandbox.netns_name,
        "lo_up": True,
        "files.hostname": hostname_file(sandbox),
        "files.hosts": hosts_file(sandbox, own, (), _peer_text(own_endpoints, directory)),
        "files.resolv.conf": resolv_conf_file(sandbox),
    }


def _peer_text(own: Sequence[Endpoint], directory: _Directory) -> str:
    """Lines for the other endpoints on the networks this sandbox joins (each name once)."""
    excluded = {e.metadata.name for e in own}
    parts: list[str] = []
    networks = sorted({e.spec.network for e in own})
    for position, network_name in enumerate(networks):
        hosts = directory.hosts_by_network.get(network_name)
        if hosts is None:
            continue
        parts.append(hosts.without(excluded))
        if position + 1 < len(networks):
            excluded |= hosts.spans.keys()
    return "".join(parts)

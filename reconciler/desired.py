"""Manifests (plus the addresses the kernel shows now) -> the desired `State`.

Pure: the observed state is only read for the addresses endpoints already
hold, so that IPAM keeps them (the kernel is the allocation database).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler import naming
from reconciler.caching import BuildMemo, memoize
from reconciler.drivers import EndpointContext, driver_for
from reconciler.drivers.common import text_values
from reconciler.errors import ManifestError
from reconciler.interface_defaults import placements
from reconciler.ipam import AllocationError, Assignment, IPAddress, allocate
from reconciler.model import Endpoint, Manifests, Sandbox
from reconciler.pools import DEFAULT_POOLS, AddressPool, assign_default_pools
from reconciler.sandbox_files import (
    HostEntry,
    hostname_file,
    hosts_file,
    hosts_lines,
    resolv_conf_file,
)
from reconciler.state import AttrValue, Resource, ResourceKey, State


@memoize(maxsize=1 << 16)
def _interface_ip(text: str) -> IPAddress:
    """The address of "address/prefix" (cached: `cnm watch` parses the same ones each time)."""
    return ipaddress.ip_interface(text).ip


def held_addresses(observed: State) -> dict[str, list[IPAddress]]:
    """Addresses each observed endpoint's interface holds now, by endpoint name."""
    held: dict[str, list[IPAddress]] = {}
    for resource in observed.of_kind("Endpoint"):
        addresses: list[IPAddress] = []
        for text in text_values(resource, "ipv4", "ipv6"):
            try:
                addresses.append(_interface_ip(text))
            except ValueError:
                continue
        held[resource.key.name] = addresses
    return held


def joined_endpoints(manifests: Manifests) -> list[Endpoint]:
    """Endpoints that get an interface: joined to a sandbox, on a driver that makes one."""
    return [
        e for e in manifests.endpoints.values()
        if e.spec.sandbox is not None
        and driver_for(manifests.networks[e.spec.network].spec.driver).has_interfaces
    ]


def host_mode_sandboxes(manifests: Manifests) -> set[str]:
    """Sandboxes joined to a host network: they are the host namespace, nothing to create."""
    return {
        str(e.spec.sandbox) for e in manifests.endpoints.values()
        if e.spec.sandbox is not None
        and driver_for(manifests.networks[e.spec.network].spec.driver).shares_host_namespace
    }


def build_desired(
    manifests: Manifests,
    set_name: str,
    observed: State,
    pools: Sequence[AddressPool] = DEFAULT_POOLS,
    memo: BuildMemo[ResourceKey, Resource] | None = None,
    held: Mapping[str, Sequence[IPAddress]] | None = None,
) -> State:
    """The state the kernel should be in for `manifests` as apply set `set_name`.

    `memo`: the previous build's Sandbox and Endpoint resources, reused where their
    inputs are the very same (a planner that builds again and again passes its own:
    `caching.PlanCaches.desired`); without it nothing is reused.
    """
    manifests = assign_default_pools(manifests, observed, pools)
    joined = joined_endpoints(manifests)
    try:
        names = [e.metadata.name for e in joined]
        kept = held if held is not None else held_addresses(observed)
        assignments = allocate(manifests, kept, names)
    except AllocationError as exc:
        raise ManifestError([exc.problem]) from exc
    resources: list[Resource] = []
    for network in manifests.networks.values():
        attrs = driver_for(network.spec.driver).network_attrs(network)
        if attrs is not None:
            resources.append(Resource(network.key, set_name, attrs))
    placed = placements(manifests, joined, observed)
    directory = _Directory.of(manifests, assignments)
    host_mode = host_mode_sandboxes(manifests)
    memo = (memo if memo is not None else BuildMemo()).next_build()
    for sandbox in manifests.sandboxes.values():
        if sandbox.metadata.name in host_mode:
            continue
        own_endpoints = directory.by_sandbox.get(sandbox.metadata.name, [])
        own = tuple(a for e in own_endpoints for a in _addresses(assignments[e.metadata.name]))
        peers = _peer_lines(own_endpoints, directory)
        inputs: tuple[object, ...] = (set_name, sandbox, own, peers)
        resource = memo.get(sandbox.key, inputs)
        if resource is None:
            attrs = _sandbox_attrs(sandbox, own, peers)
            resource = memo.put(sandbox.key, inputs, Resource(sandbox.key, set_name, attrs))
        resources.append(resource)
    for endpoint in joined:
        network = manifests.networks[endpoint.spec.network]
        sandbox = manifests.sandboxes[str(endpoint.spec.sandbox)]
        ctx = EndpointContext(
            endpoint=endpoint,
            network=network,
            sandbox=sandbox,
            assignment=assignments[endpoint.metadata.name],
            veth=naming.host_veth_name(set_name, endpoint.metadata.name),
            ifname=placed[endpoint.metadata.name].ifname,
            routes=placed[endpoint.metadata.name].routes,
        )
        inputs = (set_name, endpoint, network, sandbox, ctx.assignment, ctx.veth,
                  ctx.ifname, ctx.routes)
        resource = memo.get(endpoint.key, inputs)
        if resource is None:
            endpoint_attrs = driver_for(network.spec.driver).endpoint_attrs(ctx)
            if endpoint_attrs is None:
                continue
            resource = memo.put(endpoint.key, inputs,
                                Resource(endpoint.key, set_name, endpoint_attrs))
        resources.append(resource)
    return State(set_name, {r.key: r for r in resources})


def _addresses(assignment: Assignment) -> list[str]:
    return [str(iface.ip) for iface in (assignment.ipv4, assignment.ipv6) if iface is not None]


@dataclass(frozen=True)
class _NetworkHosts:
    """The /etc/hosts lines of one network's endpoints, rendered once.

    `spans` locates each endpoint's lines in `text`, so a sandbox's view (all
    but its own) is a few slices of one string, not a loop over every peer:
    with N endpoints on a network, N sandboxes each list N-1 peers.
    """

    text: str
    spans: Mapping[str, tuple[int, int]]
    blocks: Sequence[tuple[str, str]]  # (endpoint name, its lines), name order


@dataclass(frozen=True)
class _Directory:
    """Who is where, computed once per build."""

    by_sandbox: Mapping[str, list[Endpoint]]
    hosts_by_network: Mapping[str, _NetworkHosts]

    @classmethod
    def of(cls, manifests: Manifests, assignments: Mapping[str, Assignment]) -> _Directory:
        by_sandbox: dict[str, list[Endpoint]] = defaultdict(list)
        blocks: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for endpoint in manifests.endpoints.values():  # name order
            name = endpoint.metadata.name
            if name not in assignments:
                continue
            by_sandbox[str(endpoint.spec.sandbox)].append(endpoint)
            entries = [HostEntry(a, (name, *endpoint.spec.aliases))
                       for a in _addresses(assignments[name])]
            blocks[endpoint.spec.network].append((name, hosts_lines(entries)))
        return cls(by_sandbox, {net: _render(b) for net, b in blocks.items()})


def _render(blocks: list[tuple[str, str]]) -> _NetworkHosts:
    spans: dict[str, tuple[int, int]] = {}
    position = 0
    for name, text in blocks:
        spans[name] = (position, position + len(text))
        position += len(text)
    return _NetworkHosts("".join(text for _, text in blocks), spans, blocks)


def _sandbox_attrs(sandbox: Sandbox, own: Sequence[str], peers: str) -> dict[str, AttrValue]:
    return {
        "netns": sandbox.netns_name,
        "lo_up": True,
        "files.hostname": hostname_file(sandbox),
        "files.hosts": hosts_file(sandbox, own, peers),
        "files.resolv.conf": resolv_conf_file(sandbox),
    }


def _peer_lines(own: Sequence[Endpoint], directory: _Directory) -> str:
    """Names and aliases of the other endpoints on the networks this sandbox joins.

    Networks in name order; an endpoint listed under an earlier network is not
    repeated under a later one.
    """
    own_names = {e.metadata.name for e in own}
    networks = [directory.hosts_by_network[n] for n in sorted({e.spec.network for e in own})
                if n in directory.hosts_by_network]
    if not networks:
        return ""
    first = networks[0]
    cuts = sorted(first.spans[name] for name in own_names if name in first.spans)
    pieces, position = [], 0
    for start, end in cuts:
        pieces.append(first.text[position:start])
        position = end
    pieces.append(first.text[position:])
    if len(networks) == 1:
        return "".join(pieces)
    seen = set(own_names) | set(first.spans)  # O(peers): only for a second network
    for later in networks[1:]:
        pieces += [text for name, text in later.blocks if name not in seen]
        seen |= set(later.spans)
    return "".join(pieces)

"""Manifests (plus the addresses the kernel shows now) -> the desired `State`.

Pure: the observed state is only read for the addresses endpoints already
hold, so that IPAM keeps them (the kernel is the allocation database).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence

from reconciler import naming
from reconciler.caching import BuildMemo, memoize
from reconciler.drivers import EndpointContext, driver_for
from reconciler.drivers.common import text_values
from reconciler.errors import ManifestError
from reconciler.interface_defaults import placements
from reconciler.ipam import AllocationError, Assignment, IPAddress, allocate
from reconciler.model import Endpoint, Manifests, Sandbox
from reconciler.pools import DEFAULT_POOLS, AddressPool, assign_default_pools
from reconciler.resolver.records import KIND as RESOLVER
from reconciler.resolver.records import resolver_attrs, resolver_resource, serving_networks
from reconciler.sandbox_files import hostname_file, hosts_file, resolv_conf_file
from reconciler.shared_networks import is_borrowed, owner_set
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
        if is_borrowed(network):  # another apply set's: its endpoints only are this set's
            continue
        attrs = driver_for(network.spec.driver).network_attrs(network)
        if attrs is not None:
            resources.append(Resource(network.key, set_name, attrs))
    placed = placements(manifests, joined, observed)
    by_sandbox = _by_sandbox(manifests, assignments)
    serving = serving_networks(manifests)
    host_mode = host_mode_sandboxes(manifests)
    memo = (memo if memo is not None else BuildMemo()).next_build()
    for sandbox in manifests.sandboxes.values():
        if sandbox.metadata.name in host_mode:
            continue
        own_endpoints = by_sandbox.get(sandbox.metadata.name, [])
        own = tuple(a for e in own_endpoints for a in _addresses(assignments[e.metadata.name]))
        resolvers = _resolver_addresses(own_endpoints, serving)
        inputs: tuple[object, ...] = (set_name, sandbox, own, resolvers)
        resource = memo.get(sandbox.key, inputs)
        if resource is None:
            attrs = _sandbox_attrs(sandbox, own, resolvers)
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
            if is_borrowed(network):  # the plan line names the network's set
                endpoint_attrs["network_set"] = owner_set(network, set_name)
                if network.spec.icc is False:  # the owner's drop lists its own ports only
                    endpoint_attrs["icc"] = False
            resource = memo.put(endpoint.key, inputs,
                                Resource(endpoint.key, set_name, endpoint_attrs))
        resources.append(resource)
    resources += _resolver(set_name, manifests, joined, assignments, serving, memo)
    return State(set_name, {r.key: r for r in resources})


def _resolver(
    set_name: str, manifests: Manifests, joined: Sequence[Endpoint],
    assignments: Mapping[str, Assignment], serving: Mapping[str, tuple[str, ...]],
    memo: BuildMemo[ResourceKey, Resource],
) -> list[Resource]:
    """The set's resolver, or nothing; the previous build's object when its inputs are the
    very same (the manifest objects a `LoadCache` keeps, equal assignments)."""
    key = ResourceKey(RESOLVER, set_name)
    inputs = (set_name, tuple(joined), tuple(assignments[e.metadata.name] for e in joined),
              tuple(manifests.sandboxes.values()), tuple(serving.items()))
    resource = memo.get(key, inputs)
    if resource is None:
        built = resolver_resource(set_name, resolver_attrs(manifests, joined, assignments,
                                                           serving))
        if built is None:
            return []
        resource = memo.put(key, inputs, built)
    return [resource]


def _addresses(assignment: Assignment) -> list[str]:
    return [str(iface.ip) for iface in (assignment.ipv4, assignment.ipv6) if iface is not None]


def _by_sandbox(
    manifests: Manifests, assignments: Mapping[str, Assignment]
) -> dict[str, list[Endpoint]]:
    """The joined endpoints of each sandbox, in name order."""
    by_sandbox: dict[str, list[Endpoint]] = defaultdict(list)
    for endpoint in manifests.endpoints.values():  # name order
        if endpoint.metadata.name in assignments:
            by_sandbox[str(endpoint.spec.sandbox)].append(endpoint)
    return by_sandbox


def _resolver_addresses(
    own: Sequence[Endpoint], serving: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """Where the sandbox asks cnm's resolver: a gateway of each of its networks the
    resolver serves (IPv4 first), networks in name order."""
    addresses: list[str] = []
    for network in sorted({e.spec.network for e in own if e.spec.network in serving}):
        gateways = sorted(serving[network], key=lambda a: (":" in a, a))
        if gateways:
            addresses.append(gateways[0])
    return tuple(addresses)


def _sandbox_attrs(
    sandbox: Sandbox, own: Sequence[str], resolvers: Sequence[str]
) -> dict[str, AttrValue]:
    return {
        "netns": sandbox.netns_name,
        "lo_up": True,
        "files.hostname": hostname_file(sandbox),
        "files.hosts": hosts_file(sandbox, own),
        "files.resolv.conf": resolv_conf_file(sandbox, resolvers),
    }

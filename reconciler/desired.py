"""Manifests (plus the addresses the kernel shows now) -> the desired `State`.

Pure: the observed state is only read for the addresses endpoints already
hold, so that IPAM keeps them (the kernel is the allocation database).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from reconciler import naming
from reconciler.caching import BuildMemo, PlanCaches, memoize
from reconciler.drivers import EndpointContext, driver_for
from reconciler.drivers.common import text_values
from reconciler.errors import ManifestError
from reconciler.interface_defaults import Placement, placements
from reconciler.ipam import AllocationError, Assignment, IPAddress, allocate
from reconciler.ipam_reuse import allocate_reusing
from reconciler.manifest_set import Manifests
from reconciler.model import Endpoint, Network, Sandbox
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
    caches: PlanCaches | None = None,
) -> State:
    """The state the kernel should be in for `manifests` as apply set `set_name`.

    `memo`: the previous build's Sandbox and Endpoint resources, reused where their
    inputs are the very same (a planner that builds again and again passes its own:
    `caching.PlanCaches.desired`); without it nothing is reused. `caches`, instead
    of `memo`: all of a planner's caches, so that the address allocation, the
    interface placements and the resolver's records are reused per network,
    sandbox and endpoint too.
    """
    if caches is not None:
        memo = caches.desired
    manifests = assign_default_pools(manifests, observed, pools)
    joined = joined_endpoints(manifests)
    # endpoint name -> its observed resource: what its held addresses and interface
    # name are read from (the caches below compare it by identity)
    observed_endpoints = {r.key.name: r for r in observed.of_kind("Endpoint")}
    try:
        names = [e.metadata.name for e in joined]
        kept = held if held is not None else HeldAddresses(observed_endpoints)
        if held is None and caches is not None:
            assignments = allocate_reusing(manifests, kept, names, caches.allocation,
                                           held_key(observed_endpoints))
        else:
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
    placed = placements(manifests, joined, observed, caches.placement if caches else None,
                        observed_endpoints)
    by_sandbox = _by_sandbox(manifests, assignments)
    serving = serving_networks(manifests)
    host_mode = host_mode_sandboxes(manifests)
    memo = (memo if memo is not None else BuildMemo()).next_build()
    for sandbox in manifests.sandboxes.values():
        if sandbox.metadata.name in host_mode:
            continue
        resources.append(sandbox_resource(set_name, sandbox,
                                          by_sandbox.get(sandbox.metadata.name, []),
                                          assignments, serving, memo))
    networks, sandboxes = manifests.networks, manifests.sandboxes
    for endpoint in joined:
        built = endpoint_resource(set_name, endpoint, networks[endpoint.spec.network],
                                  sandboxes[str(endpoint.spec.sandbox)],
                                  assignments[endpoint.metadata.name],
                                  placed[endpoint.metadata.name], memo)
        if built is not None:
            resources.append(built)
    resources += resolver_resources(set_name, manifests, joined, assignments, serving, memo,
                                    caches.records if caches else None)
    desired = State(set_name, {r.key: r for r in resources})
    if caches is not None:  # where `desired_delta.rebuild` starts from next time
        caches.last_build = None if held is not None else LastBuild(
            set_name, pools, manifests, observed_endpoints, desired, assignments, placed,
            serving, frozenset(host_mode))
    return desired


@dataclass(frozen=True)
class LastBuild:
    """What a build leaves for the next one to start from (`desired_delta.rebuild`)."""

    set_name: str
    pools: Sequence[AddressPool]
    manifests: Manifests  # as the build saw them (default pools assigned)
    observed_endpoints: Mapping[str, Resource]
    desired: State
    assignments: Mapping[str, Assignment]
    placed: Mapping[str, Placement]
    serving: Mapping[str, tuple[str, ...]]
    host_mode: frozenset[str]


def held_key(endpoints: Mapping[str, Resource]) -> Callable[[str], object]:
    """What endpoint `name`'s held addresses are read from: its observed address lists."""
    def key(name: str) -> object:
        resource = endpoints.get(name)
        return None if resource is None else (resource.get("ipv4"), resource.get("ipv6"))

    return key


class HeldAddresses(Mapping[str, Sequence[IPAddress]]):
    """`held_addresses(observed)`, each endpoint's read only when allocation asks for it
    (it asks only for the networks whose assignments it cannot reuse)."""

    def __init__(self, endpoints: Mapping[str, Resource]) -> None:
        self._endpoints = endpoints

    def __getitem__(self, name: str) -> Sequence[IPAddress]:
        addresses: list[IPAddress] = []
        for text in text_values(self._endpoints[name], "ipv4", "ipv6"):
            try:
                addresses.append(_interface_ip(text))
            except ValueError:
                continue
        return addresses

    def __iter__(self) -> Iterator[str]:
        return iter(self._endpoints)

    def __len__(self) -> int:
        return len(self._endpoints)


def sandbox_resource(
    set_name: str, sandbox: Sandbox, own_endpoints: Sequence[Endpoint],
    assignments: Mapping[str, Assignment], serving: Mapping[str, tuple[str, ...]],
    memo: BuildMemo[ResourceKey, Resource],
) -> Resource:
    """The desired Sandbox resource (the previous build's when its inputs are the same)."""
    own = tuple(a for e in own_endpoints for a in assignments[e.metadata.name].texts)
    resolvers = _resolver_addresses(own_endpoints, serving)
    inputs: tuple[object, ...] = (set_name, sandbox, own, resolvers)
    resource = memo.get(sandbox.key, inputs)
    if resource is None:
        attrs = _sandbox_attrs(sandbox, own, resolvers)
        resource = memo.put(sandbox.key, inputs, Resource(sandbox.key, set_name, attrs))
    return resource


def endpoint_resource(
    set_name: str, endpoint: Endpoint, network: Network, sandbox: Sandbox,
    assignment: Assignment, placed: Placement, memo: BuildMemo[ResourceKey, Resource],
) -> Resource | None:
    """The desired Endpoint resource of a joined endpoint, or None when its driver makes
    no kernel object (the previous build's when its inputs are the same)."""
    # the host veth's name is a function of set_name and the endpoint's name
    inputs = (set_name, endpoint, network, sandbox, assignment, placed)
    resource = memo.get(endpoint.key, inputs)
    if resource is None:
        name = endpoint.metadata.name
        ctx = EndpointContext(
            endpoint=endpoint, network=network, sandbox=sandbox, assignment=assignment,
            veth=naming.host_veth_name(set_name, name), ifname=placed.ifname,
            routes=placed.routes,
        )
        attrs = driver_for(network.spec.driver).endpoint_attrs(ctx)
        if attrs is None:
            return None
        if is_borrowed(network):  # the plan line names the network's set
            attrs["network_set"] = owner_set(network, set_name)
            if network.spec.icc is False:  # the owner's drop lists its own ports only
                attrs["icc"] = False
        resource = memo.put(endpoint.key, inputs, Resource(endpoint.key, set_name, attrs))
    return resource


def resolver_resources(
    set_name: str, manifests: Manifests, joined: Sequence[Endpoint],
    assignments: Mapping[str, Assignment], serving: Mapping[str, tuple[str, ...]],
    memo: BuildMemo[ResourceKey, Resource],
    records: BuildMemo[str, tuple[object, ...]] | None = None,
) -> list[Resource]:
    """The set's resolver, or nothing; the previous build's object when its inputs are the
    very same (the manifest objects a `LoadCache` keeps, the `Assignment` objects a
    cached allocation keeps). `records`: see `resolver_attrs`."""
    key = ResourceKey(RESOLVER, set_name)
    inputs = (set_name, tuple(joined), tuple(assignments[e.metadata.name] for e in joined),
              tuple(manifests.sandboxes.values()), tuple(serving.items()))
    resource = memo.get(key, inputs)
    if resource is None:
        built = resolver_resource(set_name, resolver_attrs(manifests, joined, assignments,
                                                           serving, records))
        if built is None:
            return []
        resource = memo.put(key, inputs, built)
    return [resource]


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

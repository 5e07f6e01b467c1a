"""The desired state of a planner that builds again and again (`cnm watch`), from its
previous build: only the objects a change can reach are built again.

`desired.build_desired` is the definition; this gives the very same state (tests
compare the two over random sequences of changes) at the cost of what changed.
What can change an object's desired resource, and so what is built again:

* a Network: everything (a full build; networks seldom change);
* a Sandbox or Endpoint manifest object that is not the very object of the last
  build (`LoadCache` keeps the objects of unchanged files): itself, the sandbox
  it is in, the endpoints in that sandbox (their interface names and default
  routes are placed together), the address allocation of its network;
* an observed Endpoint resource that is not the last build's object (what the
  kernel shows changed: held addresses, interface names): the allocation of its
  network and the placements of its sandbox;
* an allocation that gives an endpoint another `Assignment` object: that endpoint
  and its sandbox (its `hosts` file names the sandbox's own addresses);
* any of the above: the resolver (its records are every endpoint's names; the changed
  endpoints' and sandboxes' entries are taken out and put in again,
  `resolver/records_delta.py`).

Anything else (other networks' allocations, the other sandboxes' placements,
their resources) is taken from the last build as it is. With caches off
(`CNM_NO_CACHE=1`) nothing is kept and every build is a full one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from reconciler import caching
from reconciler.caching import PlanCaches
from reconciler.desired import (
    HeldAddresses,
    LastBuild,
    endpoint_resource,
    held_key,
    joined_endpoints,
    resolver_resources,
    sandbox_resource,
)
from reconciler.drivers import driver_for
from reconciler.interface_defaults import Placement, place_members
from reconciler.ipam import Assignment
from reconciler.ipam_reuse import allocate_network
from reconciler.manifest_set import Manifests
from reconciler.model import Endpoint
from reconciler.pools import AddressPool, assign_default_pools
from reconciler.resolver.records import KIND as RESOLVER
from reconciler.resolver.records_delta import updated_attrs
from reconciler.state import Resource, ResourceKey, State


def rebuild(manifests: Manifests, set_name: str, observed: State,
            pools: Sequence[AddressPool], caches: PlanCaches) -> State | None:
    """`build_desired(manifests, set_name, observed, pools, caches=caches)` from
    `caches.last_build`, or None when a full build is needed (no last build, another
    set or pools, a network changed, caches off)."""
    last = caches.last_build
    manifests = assign_default_pools(manifests, observed, pools)
    if not isinstance(last, LastBuild) or not caching.ENABLED or last.set_name != set_name \
            or last.pools is not pools or manifests.duplicates:
        return None
    old = last.manifests
    if manifests.networks.keys() != old.networks.keys() or any(
            network is not old.networks[name] for name, network in manifests.networks.items()):
        return None
    observed_endpoints = {r.key.name: r for r in observed.of_kind("Endpoint")}
    sandboxes = _changed(old.sandboxes, manifests.sandboxes)
    endpoints = _changed(old.endpoints, manifests.endpoints)
    held = _changed(last.observed_endpoints, observed_endpoints)
    if not (sandboxes or endpoints or held):
        return last.desired
    if len(sandboxes) + len(endpoints | held) > max(64, len(manifests.endpoints) // 4):
        return None  # most changed (a fresh observation: every object new): build it all
    reached = [e for name in endpoints | held
               for e in (old.endpoints.get(name), manifests.endpoints.get(name)) if e is not None]
    assignments, reassigned = _allocate(manifests, last, observed_endpoints, caches,
                                        {e.spec.network for e in reached}, endpoints | held)
    in_sandboxes = {str(e.spec.sandbox) for e in reached if e.spec.sandbox is not None}
    placed, moved = _place(manifests, last, observed, observed_endpoints, caches,
                           in_sandboxes)
    touched_sandboxes = sandboxes | in_sandboxes | {
        str(e.spec.sandbox) for name in reassigned
        for e in (old.endpoints.get(name), manifests.endpoints.get(name))
        if e is not None and e.spec.sandbox is not None}
    touched_endpoints = endpoints | reassigned | moved | {
        e.metadata.name for name in sandboxes for e in manifests.endpoints_of_sandbox(name)}
    memo = caches.desired.next_build()
    resources = dict(last.desired.resources)
    host_mode = set(last.host_mode)
    for name in sorted(touched_sandboxes):
        key = ResourceKey("Sandbox", name)
        resources.pop(key, None)
        host_mode.discard(name)
        sandbox = manifests.sandboxes.get(name)
        if sandbox is None:
            continue
        if _on_host_network(manifests, manifests.endpoints_of_sandbox(name)):
            host_mode.add(name)
            continue
        own = [e for e in manifests.endpoints_of_sandbox(name) if e.metadata.name in assignments]
        resources[key] = sandbox_resource(set_name, sandbox, own, assignments, last.serving,
                                          memo)
    for name in sorted(touched_endpoints):
        key = ResourceKey("Endpoint", name)
        resources.pop(key, None)
        endpoint = manifests.endpoints.get(name)
        if endpoint is None or name not in assignments:
            continue
        built = endpoint_resource(set_name, endpoint, manifests.networks[endpoint.spec.network],
                                  manifests.sandboxes[str(endpoint.spec.sandbox)],
                                  assignments[name], placed[name], memo)
        if built is not None:
            resources[key] = built
    if sandboxes or endpoints or reassigned:
        resolver = ResourceKey(RESOLVER, set_name)
        previous = resources.pop(resolver, None)
        attrs = None if previous is None else updated_attrs(
            previous.attrs, (old, last.assignments), (manifests, assignments), last.serving,
            endpoints | reassigned, sandboxes)
        if attrs is not None:
            resources[resolver] = Resource(resolver, set_name, attrs)
        else:
            for built in resolver_resources(set_name, manifests, joined_endpoints(manifests),
                                            assignments, last.serving, memo, caches.records):
                resources[built.key] = built
    memo.keep_unused()
    desired = State(set_name, resources)
    caches.last_build = LastBuild(set_name, pools, manifests, observed_endpoints, desired,
                                  assignments, placed, last.serving, frozenset(host_mode))
    return desired


def _changed(old: Mapping[str, object], new: Mapping[str, object]) -> set[str]:
    """Names whose object is not the very same in both (added and removed ones too)."""
    changed = {name for name, obj in new.items() if old.get(name) is not obj}
    if len(new) - len(changed) != len(old):  # some went
        changed |= old.keys() - new.keys()
    return changed


def _joined(manifests: Manifests, endpoint: Endpoint) -> bool:
    """As `desired.joined_endpoints` decides it."""
    return endpoint.spec.sandbox is not None and driver_for(
        manifests.networks[endpoint.spec.network].spec.driver).has_interfaces


def _on_host_network(manifests: Manifests, endpoints: Iterable[Endpoint]) -> bool:
    """As `desired.host_mode_sandboxes` decides it, for one sandbox's endpoints."""
    return any(driver_for(manifests.networks[e.spec.network].spec.driver).shares_host_namespace
               for e in endpoints)


def _allocate(manifests: Manifests, last: LastBuild, observed_endpoints: Mapping[str, Resource],
              caches: PlanCaches, networks: set[str], dirty: set[str]
              ) -> tuple[dict[str, Assignment], set[str]]:
    """The assignments with those of `networks` allocated again (the rest kept), and the
    endpoints whose `Assignment` is another object now (or that gained or lost one).
    `dirty`: the endpoints whose manifest object or observed resource changed."""
    assignments = dict(last.assignments)
    memo = caches.allocation.next_build()
    held, key = HeldAddresses(observed_endpoints), held_key(observed_endpoints)
    joined = _Joined(manifests)
    changed: set[str] = set()
    for network in sorted(networks):
        before = [e.metadata.name for e in last.manifests.endpoints_of_network(network)]
        for name in before:
            assignments.pop(name, None)
        if network not in manifests.networks:
            changed.update(before)
            continue
        mine = {name for name in dirty
                for e in (last.manifests.endpoints.get(name), manifests.endpoints.get(name))
                if e is not None and e.spec.network == network}
        fresh = allocate_network(manifests, network, held, joined, memo, key, mine)
        assignments.update(fresh)
        changed.update(n for n in {*before, *fresh}
                       if fresh.get(n) is not last.assignments.get(n))
    memo.keep_unused()
    return assignments, changed


class _Joined:
    """Whether an endpoint is joined (`desired.joined_endpoints`), asked by name."""

    def __init__(self, manifests: Manifests) -> None:
        self._manifests = manifests

    def __contains__(self, name: object) -> bool:
        endpoint = self._manifests.endpoints.get(str(name))
        return endpoint is not None and _joined(self._manifests, endpoint)


def _place(manifests: Manifests, last: LastBuild, observed: State,
           observed_endpoints: Mapping[str, Resource], caches: PlanCaches,
           sandboxes: Sequence[str] | set[str]) -> tuple[dict[str, Placement], set[str]]:
    """The placements with those of `sandboxes` made again (the rest kept), and the
    endpoints whose placement differs now (or that gained or lost one)."""
    placed = dict(last.placed)
    memo = caches.placement.next_build()
    changed: set[str] = set()
    for sandbox in sorted(sandboxes):
        before = [e.metadata.name for e in last.manifests.endpoints_of_sandbox(sandbox)
                  if e.metadata.name in last.placed]
        for name in before:
            placed.pop(name, None)
        members = [e for e in manifests.endpoints_of_sandbox(sandbox)
                   if _joined(manifests, e)]
        fresh = place_members(manifests, sandbox, members, observed, memo,
                              observed_endpoints) if members else {}
        placed.update(fresh)
        changed.update(n for n in {*before, *fresh} if fresh.get(n) != last.placed.get(n))
    memo.keep_unused()
    return placed, changed

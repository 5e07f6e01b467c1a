"""One host's plan in a fleet (pure): its share of the manifests, its overlay networks'
addresses and VNIs from the store's view, and the remote entries peers published.

`plan_host` is what `cnm plan`, `cnm apply` and each reconcile of `cnm watch`
compute with a store: a `FleetPlan` is the usual `Planned` (this host's part)
plus the cluster facts apply would claim first (VNIs, addresses). Reading the
view is the caller's (one range read of the prefix); nothing here writes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.caching import BuildMemo
from reconciler.desired import build_desired, held_addresses
from reconciler.drivers import driver_of
from reconciler.drivers.common import remote_entries, text_values
from reconciler.errors import CnmError, ConflictError
from reconciler.fleet.addresses import Claim, plan_addresses
from reconciler.fleet.placement import cluster_networks, host_share
from reconciler.fleet.records import ClusterView
from reconciler.manifest_set import Manifests
from reconciler.model import Network
from reconciler.plan import Planned, make_plan
from reconciler.pools import DEFAULT_POOLS, AddressPool
from reconciler.state import Resource, ResourceKey, State

#: VNIs handed out when a manifest names none start here (Docker's overlay does the same:
#: low VNIs are the ones people write by hand)
FIRST_VNI = 4096
#: VXLAN over IPv4: outer IP, UDP, VXLAN headers and the inner Ethernet header
VXLAN_OVERHEAD = 50


@dataclass(frozen=True)
class HostFacts:
    """Who this host is in the fleet: its name, its VTEP address, its underlay's MTU."""

    host: str
    set_name: str
    advertise: str | None = None
    underlay_mtu: int | None = None


@dataclass(frozen=True)
class FleetPlan:
    planned: Planned
    view: ClusterView
    #: addresses to claim before creating the endpoints, in order
    claims: tuple[Claim, ...] = ()
    #: networks with no VNI in the store yet -> the VNI this plan gives them
    vnis: Mapping[str, int] = field(default_factory=dict)

    @property
    def facts(self) -> list[str]:
        """The cluster facts apply would claim, one line each (plan shows them)."""
        lines = [f"claim VNI {vni} for network {net}" for net, vni in sorted(self.vnis.items())]
        lines += [f"claim {c.address} on network {c.network} for endpoint {c.endpoint}"
                  for c in self.claims]
        return lines


def _vnis(networks: Sequence[Network], view: ClusterView) -> tuple[dict[str, int], dict[str, int]]:
    """(every network's VNI, the ones not yet in the store)."""
    resolved: dict[str, int] = {}
    new: dict[str, int] = {}
    used = set(view.vnis.values())
    for network in networks:
        name, wanted = network.metadata.name, network.spec.vni
        have = view.vnis.get(name)
        if have is not None:
            if wanted is not None and wanted != have:
                raise ConflictError(f"Network/{name}: spec.vni {wanted} differs from VNI {have} "
                                    "the cluster store gave it (a VNI is allocated once)")
            resolved[name] = have
            continue
        if wanted is not None:
            owner = next((n for n, v in view.vnis.items() if v == wanted), None)
            if owner is not None:
                raise ConflictError(f"Network/{name}: spec.vni {wanted} is network {owner}'s")
            vni = wanted
        else:
            vni = FIRST_VNI
            while vni in used:
                vni += 1
        used.add(vni)
        resolved[name] = new[name] = vni
    return resolved, new


def _resolved(network: Network, vni: int, underlay_mtu: int | None) -> Network:
    """The network with the VNI and MTU the plan gives it filled in."""
    mtu = network.spec.mtu
    if mtu is None and underlay_mtu is not None:
        mtu = underlay_mtu - VXLAN_OVERHEAD
    spec = network.spec.model_copy(update={"vni": vni, "mtu": mtu})
    return network.model_copy(update={"spec": spec})


def plan_host(
    manifests: Manifests,
    observed: State,
    view: ClusterView,
    facts: HostFacts,
    pools: Sequence[AddressPool] = DEFAULT_POOLS,
    memo: BuildMemo[ResourceKey, Resource] | None = None,
) -> FleetPlan:
    """This host's plan, and the claims it needs, from the manifests of the whole fleet."""
    share = host_share(manifests, facts.host)
    overlay = cluster_networks(share)
    if overlay and facts.advertise is None:
        raise CnmError("overlay networks need an advertise address (--advertise-address)")
    vnis, new = _vnis(overlay, view)
    resolved = {n.metadata.name: _resolved(n, vnis[n.metadata.name], facts.underlay_mtu)
                for n in overlay}
    share = Manifests(networks={**share.networks, **resolved}, sandboxes=share.sandboxes,
                      endpoints=share.endpoints, sources=share.sources)
    kernel_held = held_addresses(observed)
    held, claims = plan_addresses(manifests, share, list(resolved.values()), view, facts.host,
                                  facts.set_name, kernel_held)
    desired = build_desired(share, observed.set_name, observed, pools, memo,
                            held={**kernel_held, **held})
    desired = with_remote_entries(desired, view, facts)
    return FleetPlan(Planned(make_plan(desired, observed), desired, observed), view,
                     tuple(claims), new)


def with_remote_entries(desired: State, view: ClusterView, facts: HostFacts) -> State:
    """Each cluster-scoped network of `desired` with this host's VTEP (`local`) and the
    forwarding and neighbour entries of the peers the store knows."""
    resources = dict(desired.resources)
    for resource in desired.of_kind("Network"):
        if not is_cluster_resource(resource):
            continue
        name = resource.key.name
        vteps = {m.host: m.vtep for m in view.members_of(name) if m.host != facts.host}
        peers = [(r.host, r.mac, [a for a in (r.ipv4, r.ipv6) if a is not None])
                 for r in view.endpoints_of(name) if r.host != facts.host]
        resources[resource.key] = Resource(resource.key, desired.set_name, {
            **resource.attrs, "local": facts.advertise, **remote_entries(vteps, peers)})
    return State(desired.set_name, resources)


def is_cluster_resource(resource: Resource) -> bool:
    """A Network resource of a cluster-scoped driver (desired or observed)."""
    driver = driver_of(resource)
    return driver is not None and bool(getattr(driver, "cluster_scoped", False))


def bare_addresses(resource: Resource) -> tuple[str | None, str | None]:
    """(IPv4, IPv6) of an endpoint resource, without prefix lengths."""
    v4 = [str(ipaddress.ip_interface(t).ip) for t in text_values(resource, "ipv4")]
    v6 = [str(ipaddress.ip_interface(t).ip) for t in text_values(resource, "ipv6")]
    return (v4[0] if v4 else None), (v6[0] if v6 else None)

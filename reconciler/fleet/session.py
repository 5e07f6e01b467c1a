"""Plan, apply and delete on one host of a fleet: the store's part around the pipeline.

apply = pipeline.run with a planner that reads the store's view (one range
read) and plans this host's share (planner.py), and a confirmation hook that,
once the plan is accepted and before the first kernel change, claims what the
plan needs (VNIs, addresses: transactions that fail when another holder has
the key). A lost race changes nothing in the kernel: apply plans again. After
the kernel is verified, `settle` publishes this host's membership and
endpoints and releases the claims and records of endpoints that are gone.
Claims and settling go to the store in batches (a transaction per up to 100
keys, store.py), so an apply of hundreds of endpoints makes a few round trips.

A kill between a claim and the endpoint's creation leaks nothing: the claim
names its holder (host, set, endpoint), so the next apply plans that very
address again (addresses.py, rule 2), or releases it if the endpoint is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.caching import PlanCaches
from reconciler.errors import CnmError
from reconciler.fleet.placement import refuse_overlay_without_store
from reconciler.fleet.planner import (
    FleetPlan,
    HostFacts,
    bare_addresses,
    is_cluster_resource,
    plan_host,
)
from reconciler.fleet.records import ClusterView, EndpointRecord, Holder, Member, StoreChanges
from reconciler.fleet.store import ClusterStore, VniTaken
from reconciler.manifest_set import Manifests
from reconciler.plan import Planned
from reconciler.pools import DEFAULT_POOLS, AddressPool
from reconciler.state import State

#: How often apply plans again after losing a race for an address or a VNI
ATTEMPTS = 16


class LostRace(CnmError):
    """Another host claimed an address or VNI this plan counted on (nothing was changed)."""

    retryable = True


@dataclass
class FleetPlanner:
    """The planner `pipeline.run` calls: this host's plan from the store's view and the
    kernel. Keeps the last plan, whose claims the confirmation hook makes."""

    manifests: Manifests
    facts: HostFacts
    #: None: placement only (`--host` without `--store`), and no overlay network allowed
    store: ClusterStore | None
    pools: Sequence[AddressPool] = DEFAULT_POOLS
    caches: PlanCaches | None = None
    check: Callable[[Manifests, State], None] | None = None
    last: FleetPlan | None = None
    claimed: bool = False

    def __call__(self, observed: State) -> Planned:
        if self.check is not None:
            self.check(self.manifests, observed)
        if self.store is None:
            refuse_overlay_without_store(self.manifests, self.facts.host)
            view = ClusterView(revision=0)
        else:
            view = self.store.read()
        memo = self.caches.desired if self.caches is not None else None
        self.last = plan_host(self.manifests, observed, view, self.facts, self.pools, memo)
        self.claimed = False
        return self.last.planned

    def claim(self) -> None:
        """Claim the last plan's VNIs and addresses; LostRace if another holder has one."""
        plan = self.last
        if plan is None or self.claimed or self.store is None:
            return
        claim(self.store, plan, self.facts)
        self.claimed = True

    def confirm_then_claim(
        self, confirm: Callable[[Planned], bool] | None
    ) -> Callable[[Planned], bool]:
        def hook(planned: Planned) -> bool:
            if confirm is not None and not confirm(planned):
                return False
            self.claim()
            return True

        return hook


def claim(store: ClusterStore, plan: FleetPlan, facts: HostFacts) -> None:
    for network, vni in sorted(plan.vnis.items()):
        try:
            got = store.claim_vni(network, vni)
        except VniTaken as exc:
            raise LostRace(f"VNI {vni} for network {network}: {exc}") from exc
        if got != vni:
            raise LostRace(f"network {network} got VNI {got} meanwhile, not {vni}")
    # Every claim is tried, even after one is lost: the won ones are this host's now, and
    # the next plan keeps them, so each attempt leaves fewer addresses to race for. They
    # go in batches (a few round trips for hundreds of endpoints: store.claim_addresses).
    wanted = [(item.network, item.address, Holder(facts.host, facts.set_name, item.endpoint))
              for item in plan.claims]
    won = store.claim_addresses(wanted) if wanted else []
    lost = [item for item, ok in zip(plan.claims, won, strict=True) if not ok]
    if lost:
        raise LostRace(f"{len(lost)} address(es) (first {lost[0].address} on network "
                       f"{lost[0].network}) were claimed by other endpoints meanwhile")


def settle(store: ClusterStore, view: ClusterView, desired: State, facts: HostFacts) -> int:
    """Make the store say what this host now holds (the kernel as `desired` says it):
    publish its membership and endpoints, withdraw and release what is gone.
    Compares with `view` first, so a host in sync writes nothing; the rest goes as one
    batch (`ClusterStore.apply_changes`). Returns the number of keys written."""
    changes = store_changes(view, desired, facts)
    if changes.count:
        store.apply_changes(changes)
    return changes.count


def store_changes(view: ClusterView, desired: State, facts: HostFacts) -> StoreChanges:
    """What `settle` writes: the difference between `view` and this host's `desired`."""
    networks = {r.key.name for r in desired.of_kind("Network") if is_cluster_resource(r)}
    members = []
    if facts.advertise is not None:
        for network in sorted(networks):
            member = Member(network, facts.host, facts.advertise)
            if member not in view.members:
                members.append(member)
    records: dict[tuple[str, str], EndpointRecord] = {}
    held: dict[tuple[str, str], Holder] = {}
    for resource in desired.of_kind("Endpoint"):
        network = str(resource.get("network"))
        if network not in networks:
            continue
        ipv4, ipv6 = bare_addresses(resource)
        name = resource.key.name
        records[(network, name)] = EndpointRecord(
            network, facts.host, facts.set_name, name, str(resource.get("mac")), ipv4, ipv6)
        for address in (ipv4, ipv6):
            if address is not None:
                held[(network, address)] = Holder(facts.host, facts.set_name, name)
    mine = {(r.network, r.endpoint): r for r in view.endpoints
            if r.host == facts.host and r.set == facts.set_name}
    return StoreChanges(
        members=tuple(members),
        endpoints=tuple(record for key, record in sorted(records.items())
                        if mine.get(key) != record),
        withdrawn_endpoints=tuple((network, facts.host, facts.set_name, endpoint)
                                  for network, endpoint in sorted(set(mine) - set(records))),
        released=tuple((network, address, holder) for (network, address), holder
                       in sorted(view.held_by(facts.host).items())
                       if holder.set == facts.set_name
                       and held.get((network, address)) != holder),
        withdrawn_members=tuple(
            (member.network, facts.host) for member in view.members
            if member.host == facts.host and member.network not in networks
            and not _other_sets_use(view, member.network, facts)),
    )


def _other_sets_use(view: ClusterView, network: str, facts: HostFacts) -> bool:
    """Another apply set of this host still has endpoints on `network`."""
    return any(r.host == facts.host and r.set != facts.set_name
               for r in view.endpoints_of(network))

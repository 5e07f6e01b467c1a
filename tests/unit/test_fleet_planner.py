"""Fleet planning without a kernel or an etcd: placement, cluster IPAM, VNIs, remote
entries, the claims apply makes and what `settle` writes, against an in-memory store."""

from __future__ import annotations

import ipaddress

import pytest

from reconciler import engine
from reconciler.errors import CnmError, ConflictError
from reconciler.fleet.placement import host_share
from reconciler.fleet.planner import HostFacts, plan_host
from reconciler.fleet.records import ClusterView, EndpointRecord, Holder, Member, StoreChanges
from reconciler.fleet.session import FleetPlanner, LostRace, settle
from reconciler.loader import load_text
from reconciler.state import ResourceKey, State

MANIFESTS = """
apiVersion: cnm/v1
kind: Network
metadata: {name: ov}
spec: {driver: overlay, ipam: [{subnet: 10.50.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: local}
spec: {ipam: [{subnet: 172.30.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: s1}
spec: {host: h1}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: s2}
spec: {host: h2}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: anywhere}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: s1-ov}
spec: {network: ov, sandbox: s1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: s1-local}
spec: {network: local, sandbox: s1, ifname: eth1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: s2-ov}
spec: {network: ov, sandbox: s2, ipv4Address: 10.50.0.9}
"""
H1 = HostFacts("h1", "default", "192.0.2.1", 1500)
EMPTY = State("default", {})


class FakeStore:
    """ClusterStore's contract in memory: claims fail when another holder has the key."""

    def __init__(self) -> None:
        self.revision = 1
        self.vnis: dict[str, int] = {}
        self.addresses: dict[tuple[str, str], Holder] = {}
        self.members: set[Member] = set()
        self.endpoints: dict[tuple[str, str, str, str], EndpointRecord] = {}
        self.writes = 0

    def _write(self) -> None:
        self.revision += 1
        self.writes += 1

    def read(self) -> ClusterView:
        return ClusterView(self.revision, dict(self.vnis), tuple(sorted(self.members)),
                           tuple(sorted(self.endpoints.values())), dict(self.addresses))

    def claim_address(self, network: str, address: str, holder: Holder) -> bool:
        have = self.addresses.get((network, address))
        if have is None:
            self.addresses[(network, address)] = holder
            self._write()
        return self.addresses[(network, address)] == holder

    def release_address(self, network: str, address: str, holder: Holder) -> bool:
        if self.addresses.get((network, address)) != holder:
            return False
        del self.addresses[(network, address)]
        self._write()
        return True

    def claim_vni(self, network: str, wanted: int | None = None) -> int:
        if network not in self.vnis:
            self.vnis[network] = wanted or 4096
            self._write()
        return self.vnis[network]

    def publish_member(self, member: Member) -> None:
        self.members = {m for m in self.members
                        if (m.network, m.host) != (member.network, member.host)} | {member}
        self._write()

    def withdraw_member(self, network: str, host: str) -> None:
        self.members = {m for m in self.members if (m.network, m.host) != (network, host)}
        self._write()

    def publish_endpoint(self, record: EndpointRecord) -> None:
        self.endpoints[(record.network, record.host, record.set, record.endpoint)] = record
        self._write()

    def withdraw_endpoint(self, network: str, host: str, set_: str, endpoint: str) -> None:
        self.endpoints.pop((network, host, set_, endpoint), None)
        self._write()

    # the batches session.py sends (their chunking against etcd: test_fleet_txn.py)

    def claim_addresses(self, claims: list[tuple[str, str, Holder]]) -> list[bool]:
        return [self.claim_address(*claim) for claim in claims]

    def release_addresses(self, releases: list[tuple[str, str, Holder]]) -> list[bool]:
        return [self.release_address(*release) for release in releases]

    def apply_changes(self, changes: StoreChanges) -> None:
        for member in changes.members:
            self.publish_member(member)
        for record in changes.endpoints:
            self.publish_endpoint(record)
        for gone in changes.withdrawn_endpoints:
            self.withdraw_endpoint(*gone)
        self.release_addresses(list(changes.released))
        for network, host in changes.withdrawn_members:
            self.withdraw_member(network, host)


def manifests():  # type: ignore[no-untyped-def]
    return load_text(MANIFESTS)


def test_a_host_realizes_its_own_and_unplaced_sandboxes_and_the_overlays_they_use() -> None:
    share = host_share(manifests(), "h1")
    assert sorted(share.sandboxes) == ["anywhere", "s1"]
    assert sorted(share.endpoints) == ["s1-local", "s1-ov"]
    assert sorted(share.networks) == ["local", "ov"]
    elsewhere = host_share(manifests(), "h3")
    assert sorted(elsewhere.networks) == ["local"]  # no overlay endpoint there


def _claimed(plan) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.address for c in plan.claims]


def test_first_plan_claims_a_vni_and_a_free_address_no_static_names() -> None:
    plan = plan_host(manifests(), EMPTY, ClusterView(1), H1)
    assert dict(plan.vnis) == {"ov": 4096}
    [claim] = plan.claims
    address = ipaddress.ip_address(claim.address)
    assert (claim.network, claim.endpoint) == ("ov", "s1-ov")
    assert address in ipaddress.ip_network("10.50.0.0/24")
    # the network address, the gateway, the broadcast address, another host's static
    assert claim.address not in ("10.50.0.0", "10.50.0.1", "10.50.0.255", "10.50.0.9")
    assert _claimed(plan_host(manifests(), EMPTY, ClusterView(1), H1)) == [claim.address]
    network = plan.planned.desired.get(ResourceKey("Network", "ov"))
    assert network is not None
    assert (network.get("vni"), network.get("local"), network.get("mtu")) == \
        (4096, "192.0.2.1", 1450)
    endpoint = plan.planned.desired.get(ResourceKey("Endpoint", "s1-ov"))
    assert endpoint is not None
    assert endpoint.get("ipv4") == (f"{address}/24",) and endpoint.get("gateway4") is None
    assert endpoint.get("mac") == "02:42:" + address.packed.hex(":")
    assert ResourceKey("Sandbox", "s2") not in plan.planned.desired


def test_hosts_look_for_free_addresses_in_different_parts_of_the_pool() -> None:
    unplaced = load_text(MANIFESTS.replace("{network: ov, sandbox: s1}",
                                           "{network: ov, sandbox: anywhere}"))
    starts = {_claimed(plan_host(unplaced, EMPTY, ClusterView(1),
                                 HostFacts(h, "default", "192.0.2.1", 1500)))[0]
              for h in ("h1", "h2", "h3")}
    assert len(starts) == 3


def test_addresses_held_elsewhere_are_skipped_and_own_claims_reused() -> None:
    first = _claimed(plan_host(manifests(), EMPTY, ClusterView(1), H1))[0]
    elsewhere = ClusterView(5, {"ov": 4100}, addresses={("ov", first): Holder(
        "h2", "default", "x")})
    plan = plan_host(manifests(), EMPTY, elsewhere, H1)
    assert _claimed(plan) != [first] and len(plan.claims) == 1 and not plan.vnis
    # an apply killed after its claim: the next plan uses it and claims nothing
    killed = ClusterView(5, {"ov": 4100}, addresses={("ov", "10.50.0.7"): Holder(
        "h1", "default", "s1-ov")})
    again = plan_host(manifests(), EMPTY, killed, H1)
    endpoint = again.planned.desired.get(ResourceKey("Endpoint", "s1-ov"))
    assert again.claims == () and endpoint is not None
    assert endpoint.get("ipv4") == ("10.50.0.7/24",)


def test_a_static_address_another_endpoint_holds_is_a_conflict() -> None:
    text = MANIFESTS.replace("{network: ov, sandbox: s1}",
                             "{network: ov, sandbox: s1, ipv4Address: 10.50.0.5}")
    view = ClusterView(2, addresses={("ov", "10.50.0.5"): Holder("h2", "default", "other")})
    with pytest.raises(ConflictError, match="held by endpoint other"):
        plan_host(load_text(text), EMPTY, view, H1)


def test_remote_endpoints_become_fdb_flood_and_neighbour_entries() -> None:
    view = ClusterView(
        3, {"ov": 4096},
        members=(Member("ov", "h1", "192.0.2.1"), Member("ov", "h2", "192.0.2.2")),
        endpoints=(EndpointRecord("ov", "h2", "default", "s2-ov", "02:42:0a:32:00:09",
                                  "10.50.0.9"),
                   EndpointRecord("ov", "h1", "default", "s1-ov", "02:42:0a:32:00:02",
                                  "10.50.0.2")))
    network = plan_host(manifests(), EMPTY, view, H1).planned.desired.get(
        ResourceKey("Network", "ov"))
    assert network is not None
    assert network.get("fdb") == ("00:00:00:00:00:00 192.0.2.2", "02:42:0a:32:00:09 192.0.2.2")
    assert network.get("neighbours") == ("10.50.0.9 02:42:0a:32:00:09",)


def test_vni_from_the_store_is_kept_and_a_different_spec_vni_refused() -> None:
    text = MANIFESTS.replace("{driver: overlay,", "{driver: overlay, vni: 5000,")
    with pytest.raises(ConflictError, match="5000"):
        plan_host(load_text(text), EMPTY, ClusterView(2, {"ov": 4096}), H1)
    assert dict(plan_host(load_text(text), EMPTY, ClusterView(2), H1).vnis) == {"ov": 5000}


def test_without_a_store_an_overlay_network_is_refused_naming_the_store_option() -> None:
    unplaced = MANIFESTS.replace("{network: ov, sandbox: s1}", "{network: ov, sandbox: anywhere}")
    with pytest.raises(CnmError, match="--store"):
        engine.compute_plan(load_text(unplaced), EMPTY)
    # placed elsewhere, it is not this host's to realize, and needs no store here
    engine.compute_plan(manifests(), EMPTY)


def test_claims_then_settle_publish_once_and_a_lost_race_plans_again() -> None:
    store = FakeStore()
    planner = FleetPlanner(manifests(), H1, store)  # type: ignore[arg-type]
    planned = planner(EMPTY)
    planner.claim()
    assert list(store.addresses.values()) == [Holder("h1", "default", "s1-ov")]
    assert settle(store, store.read(), planned.desired, H1) == 2  # type: ignore[arg-type]
    assert settle(store, store.read(), planned.desired, H1) == 0  # type: ignore[arg-type]
    assert store.read().members == (Member("ov", "h1", "192.0.2.1"),)
    # another host takes the address this plan counts on, between plan and claim
    other = FakeStore()
    racing = FleetPlanner(manifests(), H1, other)  # type: ignore[arg-type]
    racing(EMPTY)
    assert racing.last is not None
    wanted = racing.last.claims[0].address
    other.claim_address("ov", wanted, Holder("h3", "default", "theirs"))
    with pytest.raises(LostRace):
        racing.claim()
    again = racing(EMPTY)  # the next plan takes another address
    assert racing.last is not None and racing.last.claims[0].address != wanted
    assert again is racing.last.planned


def test_settle_releases_and_withdraws_what_is_gone() -> None:
    store = FakeStore()
    gone = Holder("h1", "default", "old")
    store.claim_address("ov", "10.50.0.4", gone)
    store.publish_endpoint(EndpointRecord("ov", "h1", "default", "old", "02:42:0a:32:00:04",
                                          "10.50.0.4"))
    store.publish_member(Member("ov", "h1", "192.0.2.1"))
    settle(store, store.read(), EMPTY, H1)  # type: ignore[arg-type]
    assert not store.addresses and not store.endpoints and not store.members


def test_a_plan_of_a_host_in_sync_reads_the_store_once() -> None:
    store = FakeStore()
    reads = []
    original = store.read
    store.read = lambda: reads.append(1) or original()  # type: ignore[method-assign]
    FleetPlanner(manifests(), H1, store)(EMPTY)  # type: ignore[arg-type]
    assert len(reads) == 1 and store.writes == 0

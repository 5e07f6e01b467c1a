"""The store's batches without an etcd: claims, releases and records in transactions of
up to TXN_OPS keys, against an in-memory stand-in for etcd's JSON gateway that keeps
etcd's rules (compares, success and failure branches, one revision per writing
transaction, at most 128 operations per branch, no key written twice in one branch).
The real etcd runs the same batches in tests/kernel/test_fleet_store.py."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.fleet.gateway import GatewayError
from reconciler.fleet.planner import HostFacts
from reconciler.fleet.records import EndpointRecord, Holder, Member, StoreChanges, parse_store_url
from reconciler.fleet.session import FleetPlanner, LostRace, settle
from reconciler.fleet.store import ClusterStore, StoreUnavailable
from reconciler.fleet.txn import TXN_OPS
from reconciler.loader import load_text
from reconciler.state import State

MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
PREFIX = "/cnm/v1/address/ov/"
MINE = Holder("h1", "default", "e")
THEIRS = Holder("h2", "default", "theirs")


def _b(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _u(text: str) -> str:
    return base64.b64decode(text).decode()


class FakeEtcd:
    """etcd v3's kv/range and kv/txn as the JSON gateway answers them, in memory."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, int]] = {}  # key -> (value, create revision)
        self.revision = 1
        self.txns = 0
        self.ranges = 0
        #: called with the transaction's number (1, 2, ...) before it runs: a racing host
        self.before_txn: Callable[[int], None] = lambda number: None

    def put(self, key: str, value: str) -> None:
        self.revision += 1
        self.data[key] = (value, self.data.get(key, (value, self.revision))[1])

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "kv/range":
            self.ranges += 1
            start = _u(body["key"])
            end = _u(body["range_end"]) if "range_end" in body else None
            found = sorted((k, v) for k, (v, _) in self.data.items()
                           if (k == start if end is None else start <= k < end))
            return {"header": {"revision": str(self.revision)},
                    "kvs": [{"key": _b(k), "value": _b(v)} for k, v in found]}
        assert path == "kv/txn", path
        self.txns += 1
        self.before_txn(self.txns)
        compare, success, failure = body["compare"], body["success"], body["failure"]
        if max(len(compare), len(success), len(failure)) > MAX_TXN_OPS:
            raise GatewayError("HTTP 400: etcdserver: too many operations in txn request")
        for branch in (success, failure):
            written = [_u(next(iter(op.values()))["key"]) for op in branch
                       if "request_range" not in op]
            if len(written) != len(set(written)):
                raise GatewayError("HTTP 400: etcdserver: duplicate key given in txn request")
        held = all(self._holds(c) for c in compare)
        changed, responses = False, []
        for op in success if held else failure:
            kind, request = next(iter(op.items()))
            key = _u(request["key"])
            if kind == "request_range":
                kvs = [{"key": request["key"], "value": _b(self.data[key][0])}] \
                    if key in self.data else []
                responses.append({"response_range": {"kvs": kvs} if kvs else {}})
            elif kind == "request_put":
                self.data[key] = (_u(request["value"]),
                                  self.data.get(key, ("", self.revision + 1))[1])
                changed = True
                responses.append({"response_put": {}})
            else:
                changed |= self.data.pop(key, None) is not None
                responses.append({"response_delete_range": {}})
        if changed:  # one revision per transaction that changed anything, as etcd
            self.revision += 1
        return {"succeeded": held, "responses": responses}

    def _holds(self, compare: dict[str, Any]) -> bool:
        key = _u(compare["key"])
        if compare["target"] == "CREATE":
            return str(self.data[key][1] if key in self.data else 0) == compare["create_revision"]
        return key in self.data and self.data[key][0] == _u(compare["value"])

    def close(self) -> None:
        pass


def _store(etcd: FakeEtcd) -> ClusterStore:
    store = ClusterStore(parse_store_url("etcd://127.0.0.1:2379"))
    store.gateway = etcd  # type: ignore[assignment]
    return store


def _address(i: int) -> str:
    return str(ipaddress.ip_address("10.50.0.2") + i)


def _holder_value(holder: Holder) -> str:
    return (f'{{"endpoint":"{holder.endpoint}","host":"{holder.host}",'
            f'"set":"{holder.set}"}}')


def test_the_stand_in_refuses_what_etcd_refuses() -> None:
    etcd = FakeEtcd()
    store = _store(etcd)
    too_many = [{"key": _b(f"k{i}"), "target": "CREATE", "result": "EQUAL",
                 "create_revision": "0"} for i in range(MAX_TXN_OPS + 1)]
    with pytest.raises(StoreUnavailable, match="too many operations"):
        store._txn(too_many, [], [])
    twice = [{"request_put": {"key": _b("k"), "value": _b("v")}}] * 2
    with pytest.raises(StoreUnavailable, match="duplicate key"):
        store._txn([], twice, [])


@pytest.mark.parametrize("count", [0, 1, TXN_OPS - 1, TXN_OPS, TXN_OPS + 1, 3 * TXN_OPS])
def test_claims_go_in_transactions_of_txn_ops_keys(count: int) -> None:
    etcd = FakeEtcd()
    store = _store(etcd)
    claims = [("ov", _address(i), MINE) for i in range(count)]
    assert store.claim_addresses(claims) == [True] * count
    assert etcd.txns == -(-count // TXN_OPS)  # one round trip per chunk, none when empty
    assert {k: v for k, (v, _) in etcd.data.items()} == {
        PREFIX + _address(i): _holder_value(MINE) for i in range(count)}


def test_a_batch_with_taken_addresses_keeps_every_other_claim() -> None:
    etcd = FakeEtcd()
    count = 250
    taken = {0, TXN_OPS - 1, TXN_OPS, count - 1}  # first and last of the chunks
    for i in taken:
        etcd.put(PREFIX + _address(i), _holder_value(THEIRS))
    etcd.put(PREFIX + _address(150), _holder_value(MINE))  # an earlier apply's claim
    store = _store(etcd)
    verdicts = store.claim_addresses([("ov", _address(i), MINE) for i in range(count)])
    assert [i for i, won in enumerate(verdicts) if not won] == sorted(taken)
    for i in range(count):
        expected = THEIRS if i in taken else MINE
        assert etcd.data[PREFIX + _address(i)][0] == _holder_value(expected)
    # each chunk: one transaction that fails (nothing written) and one without the taken
    assert etcd.txns == 6


def test_a_key_taken_between_two_attempts_is_lost_and_never_overwritten() -> None:
    etcd = FakeEtcd()
    etcd.put(PREFIX + _address(0), _holder_value(THEIRS))

    def race(number: int) -> None:
        if number == 2:  # after the first attempt failed, before the retry
            etcd.put(PREFIX + _address(5), _holder_value(THEIRS))

    etcd.before_txn = race
    verdicts = _store(etcd).claim_addresses([("ov", _address(i), MINE) for i in range(10)])
    assert [i for i, won in enumerate(verdicts) if not won] == [0, 5]
    assert etcd.data[PREFIX + _address(5)][0] == _holder_value(THEIRS)
    assert etcd.txns == 3


def test_releases_free_only_what_the_holder_still_holds() -> None:
    etcd = FakeEtcd()
    store = _store(etcd)
    store.claim_addresses([("ov", _address(i), MINE) for i in range(150)])
    etcd.put(PREFIX + _address(7), _holder_value(THEIRS))  # forgotten, then claimed anew
    etcd.txns = 0
    verdicts = store.release_addresses([("ov", _address(i), MINE) for i in range(150)]
                                       + [("ov", _address(200), MINE)])  # never claimed
    assert [i for i, freed in enumerate(verdicts) if not freed] == [7, 150]
    assert {k: v for k, (v, _) in etcd.data.items()} == {
        PREFIX + _address(7): _holder_value(THEIRS)}
    assert etcd.txns == 4  # chunk 1 fails once; chunk 2 (51 keys) fails once


def _records(count: int) -> tuple[EndpointRecord, ...]:
    return tuple(EndpointRecord("ov", "h1", "default", f"s{i:04d}", f"02:42:0a:32:{i >> 8:02x}:"
                                f"{i & 255:02x}", _address(i)) for i in range(count))


def test_records_are_written_in_batches_and_again_they_write_nothing() -> None:
    etcd = FakeEtcd()
    store = _store(etcd)
    changes = StoreChanges(members=(Member("ov", "h1", "192.0.2.1"),), endpoints=_records(300))
    store.apply_changes(changes)
    assert etcd.txns == 4  # 301 keys
    assert len(etcd.data) == 301
    revision = etcd.revision
    store.apply_changes(changes)  # the same records: compares hold, nothing is put
    assert etcd.revision == revision
    etcd.txns = 0
    gone = tuple(("ov", "h1", "default", f"s{i:04d}") for i in range(150))
    released = tuple(("ov", _address(i), Holder("h1", "default", f"s{i:04d}"))
                     for i in range(150))
    store.claim_addresses(list(released))
    etcd.txns = 0
    store.apply_changes(StoreChanges(withdrawn_endpoints=gone, released=released,
                                     withdrawn_members=(("ov", "h1"),)))
    assert etcd.txns == 2 + 2  # 151 records removed, then 150 addresses released
    assert sorted(etcd.data) == sorted(
        f"/cnm/v1/endpoint/ov/h1/default/s{i:04d}" for i in range(150, 300))


def test_forget_removes_a_host_in_batches_keeping_what_changed_meanwhile() -> None:
    etcd = FakeEtcd()
    store = _store(etcd)
    store.claim_addresses([("ov", _address(i), Holder("gone", "default", f"e{i}"))
                           for i in range(220)])
    store.claim_address("ov", _address(300), MINE)

    def race(number: int) -> None:
        if number == 1:  # read by forget, then claimed anew before its transaction
            etcd.data[PREFIX + _address(3)] = (_holder_value(MINE), etcd.data[
                PREFIX + _address(3)][1])

    etcd.txns, etcd.before_txn = 0, race
    assert store.forget("gone") == 219
    assert sorted(etcd.data) == sorted([PREFIX + _address(3), PREFIX + _address(300)])
    assert etcd.txns == 4  # chunk 1 fails once, then two more chunks


MANIFESTS = "\n---\n".join(
    ["apiVersion: cnm/v1\nkind: Network\nmetadata: {name: ov}\n"
     "spec: {driver: overlay, ipam: [{subnet: 10.50.0.0/16}]}"]
    + [f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i}}}\nspec: {{host: h1}}\n---\n"
       f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: s{i}-ov}}\n"
       f"spec: {{network: ov, sandbox: s{i}}}" for i in range(150)])
H1 = HostFacts("h1", "default", "192.0.2.1", 1500)


def test_an_apply_claims_in_two_round_trips_and_a_lost_race_keeps_the_won() -> None:
    etcd = FakeEtcd()
    store = _store(etcd)
    planner = FleetPlanner(load_text(MANIFESTS), H1, store)
    planner(State("default", {}))
    assert planner.last is not None and len(planner.last.claims) == 150
    lost = [planner.last.claims[0], planner.last.claims[120]]
    for claim in lost:  # another host is faster between the plan and the claim
        etcd.put(PREFIX + claim.address, _holder_value(THEIRS))
    etcd.txns = 0
    with pytest.raises(LostRace, match="2 address"):
        planner.claim()
    assert etcd.txns == 1 + 4  # the VNI; two chunks, each failing once
    mine = [k for k, (v, _) in etcd.data.items() if k.startswith(PREFIX) and '"h1"' in v]
    assert len(mine) == 148
    planner(State("default", {}))  # plans again: keeps the 148, claims two more
    assert planner.last is not None
    assert sorted(c.endpoint for c in planner.last.claims) == sorted(c.endpoint for c in lost)
    assert not {c.address for c in planner.last.claims} & {c.address for c in lost}
    etcd.txns = 0
    planner.claim()
    assert etcd.txns == 1


def test_a_host_in_sync_settles_without_a_round_trip() -> None:
    etcd = FakeEtcd()
    store = _store(etcd)
    planner = FleetPlanner(load_text(MANIFESTS), H1, store)
    planned = planner(State("default", {}))
    planner.claim()
    assert planner.last is not None
    assert settle(store, planner.last.view, planned.desired, H1) == 151
    etcd.txns = etcd.ranges = 0
    assert settle(store, store.read(), planned.desired, H1) == 0
    assert (etcd.txns, etcd.ranges) == (0, 1)  # the read only

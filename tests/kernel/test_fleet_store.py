"""The cluster store against a real etcd (Debian's), observed with etcdctl.

Each test starts its own etcd inside the test's fresh namespaces (data on a
tmpfs) and ends it by PID. The verdicts come from `etcdctl`, never from cnm's
own reading of the store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from etcdlib import Etcd, make_ca

from reconciler.fleet.records import (
    EndpointRecord,
    Holder,
    Member,
    StoreChanges,
    parse_store_url,
)
from reconciler.fleet.store import (
    ClusterStore,
    StoreReadOnly,
    StoreUnavailable,
    VniTaken,
)

from helpers import REPO, cnm

H1 = Holder("h1", "default", "s1-ov")
H2 = Holder("h2", "default", "s2-ov")

_CLAIMER = """
import json, sys, time
from reconciler.fleet.records import Holder, parse_store_url
from reconciler.fleet.store import ClusterStore
url, host, start, addresses, networks = sys.argv[1], sys.argv[2], float(sys.argv[3]), \\
    json.loads(sys.argv[4]), json.loads(sys.argv[5])
store = ClusterStore.open(parse_store_url(url))
while time.time() < start:
    time.sleep(0.001)
won = [a for a in addresses if store.claim_address("ov", a, Holder(host, "default", "e-" + a))]
vnis = {n: store.claim_vni(n) for n in networks}
print(json.dumps({"won": won, "vnis": vnis}))
"""

_BATCH_CLAIMER = """
import json, sys, time
from reconciler.fleet.records import Holder, parse_store_url
from reconciler.fleet.store import ClusterStore
url, host, start, addresses = sys.argv[1], sys.argv[2], float(sys.argv[3]), \\
    json.loads(sys.argv[4])
store = ClusterStore.open(parse_store_url(url))
while time.time() < start:
    time.sleep(0.001)
before = store.round_trips
won = store.claim_addresses([("ov", a, Holder(host, "default", "e-" + a)) for a in addresses])
print(json.dumps({"won": [a for a, ok in zip(addresses, won) if ok],
                  "round_trips": store.round_trips - before}))
"""


def _open(etcd: Etcd, **kwargs: bool) -> ClusterStore:
    return ClusterStore.open(parse_store_url(etcd.store_url), **kwargs)


def test_racing_claims_from_several_processes_give_one_winner_each() -> None:
    with Etcd() as etcd:
        addresses = [f"10.50.0.{i}" for i in range(2, 42)]
        start = time.time() + 1.5
        processes = []
        for n in range(4):
            order = addresses[n::1] + addresses[:n]  # every process its own order
            networks = ["shared", f"own{n}"]
            processes.append(subprocess.Popen(
                [sys.executable, "-c", _CLAIMER, etcd.store_url, f"h{n}", str(start),
                 json.dumps(order), json.dumps(networks)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)}))
        results = {}
        for n, process in enumerate(processes):
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            results[f"h{n}"] = json.loads(out)
        winners: dict[str, list[str]] = {}
        for host, result in results.items():
            for address in result["won"]:
                winners.setdefault(address, []).append(host)
        assert sorted(winners) == sorted(addresses)
        assert all(len(hosts) == 1 for hosts in winners.values()), winners
        stored = etcd.stored("/cnm/v1/address/")
        assert len(stored) == len(addresses)
        for address, (host,) in winners.items():
            assert json.loads(stored[f"/cnm/v1/address/ov/{address}"]) == {
                "host": host, "set": "default", "endpoint": f"e-{address}"}
        shared = {result["vnis"]["shared"] for result in results.values()}
        own = [result["vnis"][f"own{n}"] for n, result in enumerate(results.values())]
        assert len(shared) == 1
        assert len(set(own) | shared) == 5  # every network its own VNI
        assert etcd.etcdctl("get", "/cnm/v1/vni/shared", "--print-value-only").stdout.strip() \
            == str(shared.pop())


def test_batched_claims_racing_from_three_processes_give_one_winner_each() -> None:
    """300 addresses per process, in transactions of 100, three processes wanting the same
    addresses in different orders at once: each address has one holder, whoever won it."""
    with Etcd() as etcd:
        addresses = [f"10.50.{i // 200}.{i % 200 + 2}" for i in range(300)]
        start = time.time() + 1.5
        processes = []
        for n in range(3):
            order = addresses[n * 100:] + addresses[:n * 100]
            processes.append(subprocess.Popen(
                [sys.executable, "-c", _BATCH_CLAIMER, etcd.store_url, f"h{n}", str(start),
                 json.dumps(order)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)}))
        winners: dict[str, list[str]] = {}
        for n, process in enumerate(processes):
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            result = json.loads(out)
            assert result["round_trips"] < 30  # 3 chunks; a lost key costs a retry of its chunk
            for address in result["won"]:
                winners.setdefault(address, []).append(f"h{n}")
        assert sorted(winners) == sorted(addresses)
        assert all(len(hosts) == 1 for hosts in winners.values()), winners
        stored = etcd.stored("/cnm/v1/address/")
        assert len(stored) == len(addresses)
        for address, (host,) in winners.items():
            assert json.loads(stored[f"/cnm/v1/address/ov/{address}"])["host"] == host


def test_records_in_batches_past_etcds_operation_limit_and_again_nothing() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        records = tuple(EndpointRecord("ov", "h1", "default", f"s{i}",
                                       f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                                       f"10.50.{i // 200}.{i % 200 + 2}") for i in range(300))
        held = [("ov", r.ipv4 or "", Holder("h1", "default", r.endpoint)) for r in records]
        assert all(store.claim_addresses(held))
        before = store.round_trips
        store.apply_changes(StoreChanges(members=(Member("ov", "h1", "192.0.2.1"),),
                                         endpoints=records))
        assert store.round_trips - before == 4  # 301 keys, 100 per transaction
        assert len(etcd.stored("/cnm/v1/endpoint/")) == 300
        revision = etcd.revision()
        store.apply_changes(StoreChanges(endpoints=records))  # the same: writes nothing
        assert etcd.revision() == revision
        store.apply_changes(StoreChanges(
            withdrawn_endpoints=tuple(("ov", "h1", "default", r.endpoint) for r in records),
            released=tuple(held), withdrawn_members=(("ov", "h1"),)))
        assert etcd.stored() == {}


def test_a_claim_is_kept_by_its_holder_and_released_only_by_it() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        assert store.claim_address("ov", "10.50.0.2", H1)
        assert store.claim_address("ov", "10.50.0.2", H1)  # already its own
        assert not store.claim_address("ov", "10.50.0.2", H2)
        before = etcd.revision()
        assert not store.release_address("ov", "10.50.0.2", H2)
        assert etcd.revision() == before
        assert json.loads(etcd.stored()["/cnm/v1/address/ov/10.50.0.2"])["host"] == "h1"
        assert store.release_address("ov", "10.50.0.2", H1)
        assert etcd.stored() == {}
        assert store.claim_address("ov", "10.50.0.2", H2)  # free again: anyone's


def test_a_vni_is_allocated_once_per_network_and_stays() -> None:
    with Etcd() as etcd:
        with _open(etcd) as store:
            first = store.claim_vni("ov")
            assert first == 4096
            assert store.claim_vni("other", 5000) == 5000
            with pytest.raises(VniTaken, match="network ov2: vni 5000 is network other's"):
                store.claim_vni("ov2", 5000)
            with pytest.raises(VniTaken):
                store.claim_vni("ov", 4200)  # ov already has 4096
        before = etcd.revision()
        with _open(etcd) as again:  # a new connection, a later apply
            assert again.claim_vni("ov") == first
            assert again.claim_vni("ov", first) == first
        assert etcd.revision() == before  # asking again writes nothing
        assert etcd.etcdctl("get", "/cnm/v1/vni/ov", "--print-value-only").stdout.strip() \
            == "4096"


def _populate(store: ClusterStore) -> None:
    store.claim_vni("ov")
    for holder, address, vtep in ((H1, "10.50.0.2", "192.0.2.1"), (H2, "10.50.0.3", "192.0.2.2")):
        assert store.claim_address("ov", address, holder)
        store.publish_member(Member("ov", holder.host, vtep))
        store.publish_endpoint(EndpointRecord("ov", holder.host, "default", holder.endpoint,
                                              "02:00:00:00:00:0" + address[-1], address))


def test_publishing_the_same_record_again_writes_nothing() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        _populate(store)
        before = etcd.revision()
        _populate(store)
        assert etcd.revision() == before
        store.publish_member(Member("ov", "h1", "192.0.2.9"))  # moved: written
        assert json.loads(etcd.stored()["/cnm/v1/member/ov/h1"]) == {"vtep": "192.0.2.9"}
        store.withdraw_endpoint("ov", "h1", "default", "s1-ov")
        store.withdraw_member("ov", "h1")
        assert "/cnm/v1/member/ov/h1" not in etcd.stored()
        assert "/cnm/v1/endpoint/ov/h1/default/s1-ov" not in etcd.stored()


def test_forget_releases_everything_a_host_held_and_nothing_else() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        _populate(store)
        store.keep_alive("h1", "192.0.2.1", 30).revoke()  # watched once, lease gone
        others = {k: v for k, v in etcd.stored().items() if "h1" not in k and '"h1"' not in v}
        result = cnm("cluster", "forget", "h1", "--store", etcd.store_url)
        assert result.returncode == 0, result.stderr
        assert "released 4 keys of host h1" in result.stdout
        assert etcd.stored() == others
        assert "/cnm/v1/vni/ov" in others  # a network's VNI is not the host's
        again = cnm("cluster", "forget", "h1", "--store", etcd.store_url)
        assert again.returncode == 0 and "knows no host h1" in again.stdout


def test_forget_refuses_a_live_host_and_a_bad_name_changing_nothing() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        _populate(store)
        lease = store.keep_alive("h1", "192.0.2.1", 30)
        keys, revision = etcd.stored(), etcd.revision()
        for args in (("h1",), ("a/b",)):
            result = cnm("cluster", "forget", *args, "--store", etcd.store_url)
            assert result.returncode == 1
            lines = (result.stdout + result.stderr).splitlines()
            assert len(lines) == 1 and args[0] in lines[0], lines
        assert etcd.stored() == keys and etcd.revision() == revision
        forced = cnm("cluster", "forget", "h1", "--force", "--store", etcd.store_url)
        assert forced.returncode == 0, forced.stderr
        assert not [k for k in etcd.stored() if k.endswith("/h1")]
        lease.revoke()


def test_status_lists_hosts_and_shows_an_expired_lease() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        _populate(store)
        lease = store.keep_alive("h1", "192.0.2.1", 2)
        status = cnm("cluster", "status", "--store", etcd.store_url, check=True).stdout
        hosts_table = status.split("\n\n")[1].splitlines()
        assert hosts_table[0].split() == ["HOST", "VTEP", "LEASE", "ENDPOINTS", "ADDRESSES"]
        rows = {line.split()[0]: line.split() for line in hosts_table[1:]}
        assert rows["h1"][:3] == ["h1", "192.0.2.1", "alive"]
        assert rows["h2"][:3] == ["h2", "192.0.2.2", "none"]
        assert ["ov", "4096", "h1,h2"] in [line.split() for line in status.splitlines()]
        lease.refresh()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # etcd expires a lease within ~0.5 s of its TTL
            document = json.loads(cnm("cluster", "status", "-o", "json", "--store",
                                      etcd.store_url, check=True).stdout)
            leases = {h["host"]: h["lease"] for h in document["hosts"]}
            if leases["h1"] == "expired":
                break
            time.sleep(0.3)
        assert leases == {"h1": "expired", "h2": "none"}
        assert "/cnm/v1/alive/h1" not in etcd.stored()
        lease.refresh()  # back after an expiry: a new lease, alive again
        assert "/cnm/v1/alive/h1" in etcd.stored()


def test_watch_yields_a_fresh_view_after_each_change() -> None:
    with Etcd() as etcd, _open(etcd) as store, _open(etcd) as writer:
        start = store.read().revision
        changes = [Member("ov", "h1", "192.0.2.1"), Member("ov", "h2", "192.0.2.2")]

        def write() -> None:
            for member in changes:
                time.sleep(0.4)
                writer.publish_member(member)
        threading.Thread(target=write, daemon=True).start()
        seen, ticks, latest = [], 0, start
        began = time.monotonic()
        watch = store.watch(start, tick=0.1)
        for view in watch:
            if view is None:
                ticks += 1
            else:
                assert view.revision > latest
                latest = view.revision
                seen.append(view.members)
                if len(view.members) == 2:
                    break
            assert time.monotonic() - began < 5
        watch.close()
        assert ticks >= 2  # quiet time came as ticks, so a caller can check for stop
        assert seen[-1] == tuple(changes)
        assert latest == etcd.revision()


def test_read_only_stores_never_change_the_store() -> None:
    with Etcd() as etcd:
        with _open(etcd) as store:
            _populate(store)
        keys, revision = etcd.stored(), etcd.revision()
        for _ in range(3):  # three plans
            with _open(etcd, read_only=True) as plan_store:
                view = plan_store.read()
                assert view.revision == revision
                writes = (lambda: plan_store.claim_address("ov", "10.50.0.9", H1),
                          lambda: plan_store.release_address("ov", "10.50.0.2", H1),
                          lambda: plan_store.claim_vni("new"),
                          lambda: plan_store.publish_member(Member("ov", "h3", "192.0.2.3")),
                          lambda: plan_store.withdraw_member("ov", "h1"),
                          lambda: plan_store.withdraw_endpoint("ov", "h1", "default", "s1-ov"),
                          lambda: plan_store.keep_alive("h1", None, 5),
                          lambda: plan_store.forget("h1"))
                for write in writes:
                    with pytest.raises(StoreReadOnly):
                        write()
            cnm("cluster", "status", "--store", etcd.store_url, check=True)
        assert etcd.revision() == revision and etcd.stored() == keys


def test_a_stopped_store_is_one_line_naming_it() -> None:
    etcd = Etcd().start()
    url = etcd.store_url
    store = _open(etcd)
    etcd.stop()
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.read()
        assert caught.value.one_line().startswith(f"store {url}: ")
        with pytest.raises(StoreUnavailable):
            ClusterStore.open(parse_store_url(url))
        result = cnm("cluster", "status", "--store", url)
        assert result.returncode == 1
        lines = (result.stdout + result.stderr).splitlines()
        assert len(lines) == 1 and f"store {url}: " in lines[0], lines
        etcd.start()  # back: the same store object works again
        assert store.read().revision >= 1
    finally:
        etcd.destroy()


def test_a_second_endpoint_is_used_when_the_first_is_down() -> None:
    with Etcd(port=2479) as etcd:
        config = parse_store_url(f"etcd://127.0.0.1:2379,127.0.0.1:{etcd.port}")
        with ClusterStore.open(config) as store:
            assert store.claim_address("ov", "10.50.0.2", H1)
        assert "/cnm/v1/address/ov/10.50.0.2" in etcd.stored()


def test_tls_with_a_self_signed_ca_and_a_wrong_ca_fails_clearly() -> None:
    tls = make_ca(Path("/var/lib/cnm/tls"), "store", "127.0.0.1")
    stranger = make_ca(Path("/var/lib/cnm/tls"), "stranger", "127.0.0.1")
    with Etcd(tls=tls) as etcd:
        assert etcd.store_url == "etcd://127.0.0.1:2379"
        config = parse_store_url(etcd.store_url, ca=tls.ca, cert=tls.cert, key=tls.key)
        with ClusterStore.open(config) as store:
            assert store.claim_address("ov", "10.50.0.2", H1)
        assert "/cnm/v1/address/ov/10.50.0.2" in etcd.stored()
        status = cnm("cluster", "status", "--store", etcd.store_url, "--store-ca", tls.ca,
                     "--store-cert", tls.cert, "--store-key", tls.key)
        assert status.returncode == 0, status.stderr
        assert status.stdout.split("\n")[3].split()[0] == "h1"

        wrong = parse_store_url(etcd.store_url, ca=stranger.ca, cert=stranger.cert,
                                key=stranger.key)
        with pytest.raises(StoreUnavailable) as caught:
            ClusterStore.open(wrong)
        message = caught.value.one_line()
        assert message.startswith(f"store {etcd.store_url}: TLS: certificate verify failed")
        plain = cnm("cluster", "status", "--store", etcd.store_url)  # no TLS at all
        assert plain.returncode == 1
        assert len((plain.stdout + plain.stderr).splitlines()) == 1
        assert f"store {etcd.store_url}: " in plain.stderr


def test_a_read_is_one_round_trip_however_many_endpoints() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        for i in range(300):
            store.publish_endpoint(EndpointRecord("ov", f"h{i % 3}", "default", f"s{i}",
                                                  f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"))
        before = store.round_trips
        view = store.read()
        assert store.round_trips == before + 1
        assert len(view.endpoints) == 300 == len(etcd.stored("/cnm/v1/endpoint/"))


def test_a_snapshot_restores_the_store_as_docs_fleet_md_says() -> None:
    """The backup and restore commands of docs/fleet.md, "Operating etcd", as written there."""
    snapshot = "/var/lib/cnm/cnm.db"
    with Etcd() as etcd:
        with _open(etcd) as store:
            _populate(store)
        keys = etcd.stored()
        etcd.etcdctl("snapshot", "save", snapshot)
    restored = Etcd(name="restored")
    restored.data_root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "cnm-etcd", str(restored.data_root)], check=True)
    subprocess.run(["etcdctl", "snapshot", "restore", snapshot,
                    "--data-dir", str(restored.data_root / "data"), "--name", restored.name,
                    "--initial-cluster", f"{restored.name}={restored.peer_url}",
                    "--initial-advertise-peer-urls", restored.peer_url],
                   check=True, capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})
    with restored:
        assert restored.stored() == keys
        with _open(restored) as store:
            assert not store.claim_address("ov", "10.50.0.2", H2)  # still h1's


def test_watch_from_a_compacted_revision_starts_over_from_a_fresh_read() -> None:
    with Etcd() as etcd, _open(etcd) as store:
        _populate(store)
        old = 2
        etcd.etcdctl("compact", str(etcd.revision()))
        watch = store.watch(old, tick=0.1)
        first = next(view for view in watch if view is not None)
        assert first.revision == etcd.revision()
        assert {m.host for m in first.members} == {"h1", "h2"}
        store.publish_member(Member("ov", "h3", "192.0.2.3"))  # and it keeps following
        later = next(view for view in watch if view is not None)
        assert "h3" in {m.host for m in later.members}
        watch.close()

"""Overlay networks across three simulated hosts (each its own network and mount namespace),
joined by an underlay bridge in the test's "switch" namespace, with a real etcd on it.

Observers are independent of cnm: `ip -j`, `bridge -j`, real TCP between
sandboxes, `etcdctl`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fleetlib import Fleet, manifests_dir

from helpers import wait_for
from isolation import run_isolated

FLEET = """
apiVersion: cnm/v1
kind: Network
metadata: {name: ov}
spec: {driver: overlay, ipam: [{subnet: 10.50.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: ov2}
spec: {driver: overlay, ipam: [{subnet: 10.60.0.0/24}]}
"""
PLACED = {"a1": ("h1", "ov"), "a2": ("h2", "ov"), "a3": ("h3", "ov"),
          "b1": ("h1", "ov2"), "b3": ("h3", "ov2")}


def fleet_manifests(placed: dict[str, tuple[str, str]]) -> str:
    text = FLEET
    for sandbox, (host, network) in sorted(placed.items()):
        text += f"""---
apiVersion: cnm/v1
kind: Sandbox
metadata: {{name: {sandbox}}}
spec: {{host: {host}}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: {sandbox}-{network}}}
spec: {{network: {network}, sandbox: {sandbox}}}
"""
    return text


def _all_ok(results: list) -> None:  # type: ignore[type-arg]
    for result in results:
        assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"


def _scenario() -> None:
    fleet = Fleet(3)
    h1, h2, h3 = fleet.hosts
    work = Path(tempfile.mkdtemp(prefix="cnm-fleet-"))
    try:
        directory = manifests_dir(work / "m", fleet_manifests(PLACED))
        # concurrent first applies, then one more round converges every host (FLEET.md)
        _all_ok(fleet.concurrently("apply", "-f", directory, "--yes"))
        _all_ok(fleet.concurrently("apply", "-f", directory, "--yes"))
        # unique addresses cluster-wide, as the kernels and the store show them
        addresses = {name: host.address_of(name) for host in fleet.hosts
                     for name, (placed, _) in PLACED.items() if placed == host.name}
        assert len(set(addresses.values())) == len(addresses), addresses
        assert len(fleet.keys("address/")) == len(PLACED)
        # the next apply is a no-op on every host, and three plans write nothing
        for host in fleet.hosts:
            out = host.cnm("apply", "-f", directory, "--yes", store=fleet.store, check=True)
            assert "No changes" in out.stdout, out.stdout + out.stderr
        revision = fleet.revision()
        for host in fleet.hosts:
            out = host.cnm("plan", "-f", directory, "--detailed-exitcode", store=fleet.store)
            assert out.returncode == 0, out.stdout + out.stderr
        assert fleet.revision() == revision
        # each host's kernel: bridge + VXLAN device (VNI, local VTEP, 4789, learning off)
        vnis = set()
        for host in fleet.hosts:
            vxlan = host.json("ip", "-d", "-j", "link", "show", "vx-ov")[0]
            data = vxlan["linkinfo"]["info_data"]
            assert (data["local"], data["port"], data["learning"]) == (host.address, 4789, False)
            assert vxlan["master"] == "br-ov"
            assert vxlan.get("ifalias", "").endswith("Network/ov")
            vnis.add(data["id"])
        assert len(vnis) == 1
        # h1's FDB: a2 and a3 at their hosts' VTEPs, flood entries to h2 and h3
        fdb = h1.fdb("vx-ov")
        mac_of = {name: h.json("ip", "-n", name, "-j", "link", "show", "eth0")[0]["address"]
                  for h in fleet.hosts for name, (p, _) in PLACED.items() if p == h.name}
        assert (mac_of["a2"], h2.address) in fdb and (mac_of["a3"], h3.address) in fdb
        assert ("00:00:00:00:00:00", h2.address) in fdb
        assert ("00:00:00:00:00:00", h3.address) in fdb
        assert (addresses["a2"], mac_of["a2"]) in h1.neighbours("vx-ov")
        # cross-host TCP on one overlay network; none between the two networks
        for client, server in (("a1", "a2"), ("a3", "a1")):
            reply = _tcp(fleet, server, client, addresses[server])
            assert reply.startswith("pong " + addresses[client]), reply
        assert _tcp(fleet, "b3", "b1", addresses["b3"]).startswith("pong")
        assert _tcp_fails(fleet, "a1", addresses["b3"])
        # a hand-deleted FDB entry is drift, and apply repairs it
        h2.run("bridge", "fdb", "del", mac_of["a1"], "dev", "vx-ov", "dst", h1.address)
        out = h2.cnm("plan", "-f", directory, "--detailed-exitcode", store=fleet.store)
        assert out.returncode == 2 and "Network/ov" in out.stdout, out.stdout + out.stderr
        h2.cnm("apply", "-f", directory, "--yes", store=fleet.store, check=True)
        assert (mac_of["a1"], h1.address) in h2.fdb("vx-ov")
        # the store stopped: apply exits 1 naming the store, the kernel unchanged
        fleet.etcd.stop()
        moved = dict(PLACED, a4=("h1", "ov"))
        directory2 = manifests_dir(work / "m2", fleet_manifests(moved))
        before = h1.kernel()
        out = h1.cnm("apply", "-f", directory2, "--yes", store=fleet.store)
        lines = (out.stdout + out.stderr).strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1 and "192.0.2.254:2379" in lines[0], lines
        assert h1.kernel() == before
        fleet.etcd.start()
        h1.cnm("apply", "-f", directory2, "--yes", store=fleet.store, check=True)
        assert h1.address_of("a4") not in addresses.values()
        # cluster status lists every host
        status = h1.cnm("cluster", "status", store=fleet.store, check=True).stdout
        assert all(h.name in status and h.address in status for h in fleet.hosts), status
        # an apply killed between claiming an address and creating the endpoint leaks
        # nothing: the next apply creates the endpoint with the address claimed
        moved["a5"] = ("h2", "ov")
        directory4 = manifests_dir(work / "m4", fleet_manifests(moved))
        killed = h2.cnm("apply", "-f", directory4, "--yes", store=fleet.store,
                        env={"CNM_FAULT": "crash@1"})
        assert killed.returncode == -9, killed.stdout + killed.stderr
        claimed = fleet.etcd.stored("/cnm/v1/address/ov/")
        held = [key for key, value in claimed.items() if '"a5-ov"' in value]
        assert len(held) == 1 and "a5" not in h2.kernel()["netns"], claimed
        h2.cnm("apply", "-f", directory4, "--yes", store=fleet.store, check=True)
        assert held[0].endswith("/" + h2.address_of("a5"))
        assert len(fleet.keys("address/")) == len(moved)
        # a sandbox removed on h3 leaves its peers after their next reconcile
        gone = dict(moved)
        del gone["a3"]
        directory3 = manifests_dir(work / "m3", fleet_manifests(gone))
        h3.cnm("apply", "-f", directory3, "--yes", store=fleet.store, check=True)
        for host in (h1, h2):
            host.cnm("apply", "-f", directory3, "--yes", store=fleet.store, check=True)
            assert all(mac != mac_of["a3"] for mac, _ in host.fdb("vx-ov"))
        # delete on every host leaves nothing, in the kernels and in the store
        for host in fleet.hosts:
            deleted = host.cnm("delete", "-f", directory3, "--yes", store=fleet.store,
                               check=True)
            assert "Delete complete: " in deleted.stdout + deleted.stderr  # speaks of deletion
            assert host.kernel()["netns"] == []
            assert not [link for link in host.json("ip", "-j", "link", "show")
                        if link["ifname"].startswith(("br-", "vx-", "cnm"))]
        assert fleet.keys("address/") == [] and fleet.keys("endpoint/") == []
        assert fleet.keys("member/") == []
    finally:
        fleet.close()


def _tcp(fleet: Fleet, server: str, client: str, address: str) -> str:
    """TCP from sandbox `client` to `server` (each on its own host): the server's reply."""
    import subprocess

    from helpers import _CLIENT, _SERVER

    server_host = next(h for h in fleet.hosts if _has(h, server))
    client_host = next(h for h in fleet.hosts if _has(h, client))
    serving = subprocess.Popen(
        [*server_host.prefix(), "ip", "netns", "exec", server, "python3", "-c", _SERVER,
         address, "8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serving.stdout is not None
        assert serving.stdout.readline().strip() == "ready"
        reply = client_host.run("ip", "netns", "exec", client, "python3", "-c", _CLIENT,
                                address, "8080", check=False)
        return reply.stdout or reply.stderr
    finally:
        serving.kill()
        serving.wait()


def _tcp_fails(fleet: Fleet, client: str, address: str) -> bool:
    from helpers import _CLIENT

    client_host = next(h for h in fleet.hosts if _has(h, client))
    return client_host.run("ip", "netns", "exec", client, "python3", "-c", _CLIENT, address,
                           "8080", check=False).returncode != 0


def _has(host: object, netns: str) -> bool:
    import os

    return os.path.exists(f"/proc/{host.process.pid}/root/run/netns/{netns}")  # type: ignore[attr-defined]


def test_overlay_across_three_hosts() -> None:
    run_isolated(_scenario)


def test_watch_programs_a_new_remote_endpoint_within_a_second() -> None:
    run_isolated(_watch_scenario)


def _watch_scenario() -> None:
    import subprocess
    import time

    fleet = Fleet(2)
    h1, h2 = fleet.hosts
    work = Path(tempfile.mkdtemp(prefix="cnm-fleet-watch-"))
    watcher = None
    try:
        one = {"a1": ("h1", "ov")}
        directory = manifests_dir(work / "m", fleet_manifests(one))
        h1.cnm("apply", "-f", directory, "--yes", store=fleet.store, check=True)
        watcher = subprocess.Popen(
            h1.cnm_command("watch", "-f", directory), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=h1.cnm_env(fleet.store))
        assert wait_for(lambda: any(h.get("lease") == "alive" for h in _hosts(h1, fleet)), 15.0), \
            "watch keeps no liveness key"
        two = dict(one, a2=("h2", "ov"))
        h2.cnm("apply", "-f", manifests_dir(work / "m2", fleet_manifests(two)), "--yes",
               store=fleet.store, check=True)
        returned = time.monotonic()
        mac = h2.json("ip", "-n", "a2", "-j", "link", "show", "eth0")[0]["address"]
        assert wait_for(lambda: (mac, h2.address) in h1.fdb("vx-ov"), 5.0)
        elapsed = time.monotonic() - returned
        assert elapsed <= 1.0, f"programmed on the peer {elapsed:.2f} s after the apply"
        # the sandbox goes on h2: h1's watch drops its entries
        h2.cnm("delete", "-f", manifests_dir(work / "m3", fleet_manifests({"a2": ("h2", "ov")})),
               "--yes", store=fleet.store, check=True)
        assert wait_for(lambda: all(m != mac for m, _ in h1.fdb("vx-ov")), 1.5)
        # the store goes away: the data plane stays; it comes back: converges again
        before = h1.kernel()
        fleet.etcd.stop()
        time.sleep(2.0)
        assert h1.kernel()["fdb"] == before["fdb"] and h1.kernel()["netns"] == before["netns"]
        fleet.etcd.start()
        h2.cnm("apply", "-f", manifests_dir(work / "m2", fleet_manifests(two)), "--yes",
               store=fleet.store, check=True)
        mac = h2.json("ip", "-n", "a2", "-j", "link", "show", "eth0")[0]["address"]
        if not wait_for(lambda: (mac, h2.address) in h1.fdb("vx-ov"), 20.0):
            watcher.terminate()
            raise AssertionError("not programmed after the store came back:\n"
                                 + watcher.communicate(timeout=10)[0])
    finally:
        if watcher is not None:
            watcher.terminate()
            try:
                watcher.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watcher.kill()
        fleet.close()


def _hosts(host: object, fleet: Fleet) -> list[dict]:  # type: ignore[type-arg]
    import json

    out = host.cnm("cluster", "status", "-o", "json", store=fleet.store)  # type: ignore[attr-defined]
    if out.returncode != 0:
        return []
    data = json.loads(out.stdout)
    return list(data.get("hosts", [])) if isinstance(data, dict) else []


def test_overlay_without_a_store_changes_nothing_and_names_the_option() -> None:
    run_isolated(_no_store_scenario)


def _no_store_scenario() -> None:
    import os

    from helpers import cnm, kernel_dump

    os.environ.pop("CNM_STORE", None)
    unplaced = FLEET + """---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: s1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: s1-ov}
spec: {network: ov, sandbox: s1}
"""
    directory = manifests_dir(Path(tempfile.mkdtemp(prefix="cnm-nostore-")), unplaced)
    before = kernel_dump()
    for args in (("apply", "-f", directory, "--yes"), ("plan", "-f", directory),
                 ("apply", "-f", directory, "--yes", "--host", "h1"),
                 ("apply", "-f", directory, "--yes", "--store", "etcd://nonsense")):
        out = cnm(*args)
        lines = (out.stdout + out.stderr).strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1 and "--store" in lines[0], (args, lines)
        assert kernel_dump() == before

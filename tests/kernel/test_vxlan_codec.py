"""The VXLAN, forwarding-database and neighbour codec against the real kernel: what cnm
writes, read back by `ip -j`/`bridge -j`; what iproute2 writes, read by cnm and by
pyroute2 (the oracle) alike."""

from __future__ import annotations

import subprocess

from reconciler.kernel.rtnl import Rtnl

from helpers import ip_json
from isolation import run_isolated


def _written_by_cnm() -> None:
    subprocess.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "lo"], check=True)
    with Rtnl() as rtnl:
        rtnl.add_bridge("br-t", group=7)
        rtnl.add_vxlan("vx-t", vni=4097, local="192.0.2.1", port=4789, group=7, mtu=1450)
        vx = rtnl.link("vx-t")
        assert vx is not None and vx.vxlan is not None
        assert (vx.vxlan.vni, vx.vxlan.local, vx.vxlan.port, vx.vxlan.learning,
                vx.vxlan.proxy) == (4097, "192.0.2.1", 4789, False, True)
        rtnl.add_fdb(vx.index, "00:00:00:00:00:00", "192.0.2.2")
        rtnl.add_fdb(vx.index, "00:00:00:00:00:00", "192.0.2.3")  # appended, not replaced
        rtnl.add_fdb(vx.index, "02:42:0a:32:00:05", "192.0.2.2")
        rtnl.add_neighbour(vx.index, "10.50.0.5", "02:42:0a:32:00:05")
        rtnl.add_neighbour(vx.index, "fd00:50::5", "02:42:0a:32:00:05")
        link = ip_json("-d", "link", "show", "vx-t")[0]
        data = link["linkinfo"]["info_data"]
        assert (data["id"], data["local"], data["port"], data["learning"], data["proxy"]) == \
            (4097, "192.0.2.1", 4789, False, True)
        shown = sorted((e["mac"], e["dst"]) for e in ip_json_bridge("vx-t") if "dst" in e)
        assert shown == rtnl.fdb_entries(vx.index) == [
            ("00:00:00:00:00:00", "192.0.2.2"), ("00:00:00:00:00:00", "192.0.2.3"),
            ("02:42:0a:32:00:05", "192.0.2.2")]
        neigh = sorted((n["dst"], n["lladdr"]) for n in ip_json("neigh", "show", "dev", "vx-t"))
        assert neigh == rtnl.neighbour_entries(vx.index) == [
            ("10.50.0.5", "02:42:0a:32:00:05"), ("fd00:50::5", "02:42:0a:32:00:05")]
        rtnl.delete_fdb(vx.index, "00:00:00:00:00:00", "192.0.2.3")
        rtnl.delete_neighbour(vx.index, "fd00:50::5", "02:42:0a:32:00:05")
        assert ("00:00:00:00:00:00", "192.0.2.3") not in rtnl.fdb_entries(vx.index)
        assert [n["dst"] for n in ip_json("neigh", "show", "dev", "vx-t")] == ["10.50.0.5"]


def _batched_by_cnm() -> None:
    subprocess.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "lo"], check=True)
    with Rtnl() as rtnl:
        rtnl.add_vxlan("vx-b", vni=4098, local="192.0.2.1", port=4789, group=7, mtu=1450)
        vx = rtnl.link("vx-b")
        assert vx is not None
        macs = [f"02:42:0a:32:{i >> 8:02x}:{i & 255:02x}" for i in range(300)]
        fdb = [("00:00:00:00:00:00", "192.0.2.2"), ("00:00:00:00:00:00", "192.0.2.3")]
        fdb += [(mac, f"192.0.2.{2 + i % 2}") for i, mac in enumerate(macs)]
        neighbours = [(f"10.50.{i >> 8}.{i & 255}", mac) for i, mac in enumerate(macs)]
        rtnl.change_entries(vx.index, fdb_new=fdb, neighbours_new=neighbours)  # 602 changes
        shown = sorted((e["mac"], e["dst"]) for e in ip_json_bridge("vx-b") if "dst" in e)
        assert shown == sorted(fdb)
        neigh = sorted((n["dst"], n["lladdr"]) for n in ip_json("neigh", "show", "dev", "vx-b"))
        assert neigh == sorted(neighbours)
        rtnl.change_entries(vx.index, fdb_gone=fdb[1:151], neighbours_gone=neighbours[:149],
                            fdb_new=[("02:42:0a:33:00:01", "192.0.2.4")],
                            neighbours_new=[("10.51.0.1", "02:42:0a:33:00:01")])
        shown = sorted((e["mac"], e["dst"]) for e in ip_json_bridge("vx-b") if "dst" in e)
        assert shown == sorted([fdb[0], *fdb[151:], ("02:42:0a:33:00:01", "192.0.2.4")])
        neigh = sorted((n["dst"], n["lladdr"]) for n in ip_json("neigh", "show", "dev", "vx-b"))
        assert neigh == sorted([*neighbours[149:], ("10.51.0.1", "02:42:0a:33:00:01")])
        assert rtnl.neighbour_entries(vx.index) == neigh


def ip_json_bridge(device: str) -> list[dict[str, str]]:
    import json

    out = subprocess.run(["bridge", "-j", "fdb", "show", "dev", device], check=True,
                         capture_output=True, text=True).stdout
    return list(json.loads(out or "[]"))


def _written_by_iproute2() -> None:
    from pyroute2 import IPRoute

    subprocess.run(["ip", "link", "add", "vx-o", "type", "vxlan", "id", "77", "local",
                    "192.0.2.9", "dstport", "4789", "nolearning"], check=True)
    with Rtnl() as rtnl:
        mine = rtnl.link("vx-o")
    with IPRoute() as ipr:
        theirs = ipr.link("get", ifname="vx-o")[0]
        data = theirs.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        oracle = (data.get_attr("IFLA_VXLAN_ID"), data.get_attr("IFLA_VXLAN_LOCAL"),
                  data.get_attr("IFLA_VXLAN_PORT"), bool(data.get_attr("IFLA_VXLAN_LEARNING")),
                  bool(data.get_attr("IFLA_VXLAN_PROXY")))
    assert mine is not None and mine.vxlan is not None
    assert (mine.vxlan.vni, mine.vxlan.local, mine.vxlan.port, mine.vxlan.learning,
            mine.vxlan.proxy) == oracle == (77, "192.0.2.9", 4789, False, False)


def test_vxlan_fdb_and_neighbours_written_by_cnm() -> None:
    run_isolated(_written_by_cnm)


def test_hundreds_of_fdb_and_neighbour_entries_in_batches() -> None:
    run_isolated(_batched_by_cnm)


def test_vxlan_written_by_iproute2_decodes_as_pyroute2_reads_it() -> None:
    run_isolated(_written_by_iproute2)

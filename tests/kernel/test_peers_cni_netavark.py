"""cnm next to the CNI reference plugins and netavark, both real and driven as their
runtimes drive them (containerd: one exec per plugin with CNI_* and the config on
stdin; podman: `netavark --config DIR setup NETNS` with its JSON on stdin).

Each test runs in its own network + mount namespace (tests/isolation.py) with tmpfs on
every peer directory (peers.host.private_dirs). The verdicts: every traffic path of both
sides answers, by real TCP; and each side's links, addresses, routes, rules, nftables
objects and files are identical before, during and after the other side's apply and
delete, as iproute2 and nft show them (peers.views.side).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from peers.cni import cni_conflist, cni_exec
from peers.cnm_set import CNM_EXPECTED, CNM_SET, cnm_apply, cnm_delete, cnm_traffic
from peers.host import (
    HOST,
    OUTSIDE,
    add_netns,
    build_outside,
    del_netns,
    end_children,
    private_dirs,
)
from peers.netavark import netavark, netavark_network, netavark_options
from peers.traffic import connect, serving
from peers.views import assert_unchanged, side

from helpers import write_manifests

PUBLISHED = 8082


class Cni:
    """Containers on a CNI bridge network (bridge + host-local + portmap)."""

    files = ("/var/lib/cni",)

    def __init__(self, base: Path) -> None:
        self.conflist = cni_conflist("cninet", "cni0", "10.77.0.0/24")
        self.results: dict[str, Any] = {}

    def add(self, name: str, address: str, publish: bool = False) -> None:
        add_netns(name)
        ports = [{"hostPort": PUBLISHED, "containerPort": 80, "protocol": "tcp"}]
        result = cni_exec("ADD", self.conflist, name, f"/run/netns/{name}",
                          ports=ports if publish else None, results=self.results)
        assert [ip["address"] for ip in result["ips"]] == [f"{address}/24"], result

    def delete(self, name: str) -> None:
        cni_exec("DEL", self.conflist, name, f"/run/netns/{name}", results=self.results)
        del_netns(name)


class Netavark:
    """Containers on a netavark bridge network (iptables driver, static addresses)."""

    files = ("/run/containers",)

    def __init__(self, base: Path) -> None:
        self.config = "/run/containers/networks"
        self.network = netavark_network("podnet", "podman1", "10.77.0.0/24", "10.77.0.1")
        self.options: dict[str, dict[str, Any]] = {}

    def add(self, name: str, address: str, publish: bool = False) -> None:
        add_netns(name)
        ports = [{"host_ip": "", "container_port": 80, "host_port": PUBLISHED, "range": 1,
                  "protocol": "tcp"}]
        self.options[name] = netavark_options(self.network, name, address,
                                              ports if publish else None)
        status = netavark("setup", self.config, f"/run/netns/{name}", self.options[name])
        assert status["podnet"]["interfaces"]["eth0"]["subnets"][0]["ipnet"] == \
            f"{address}/24", status

    def delete(self, name: str) -> None:
        netavark("teardown", self.config, f"/run/netns/{name}", self.options.pop(name))
        del_netns(name)


# the peer's two containers (p2 publishes port 8082) and one it adds and removes later
P1, P2, P3 = "10.77.0.2", "10.77.0.3", "10.77.0.4"
PEER_EXPECTED = {"same network": f"p2 {P1}", "published port": f"p2 {OUTSIDE}",
                 "outbound": f"outside {HOST}"}


def peer_traffic() -> dict[str, str | None]:
    seen: dict[str, str | None] = {}
    with serving("p2", P2, 5000, "p2"):
        seen["same network"] = connect("p1", P2, 5000)
    with serving("p2", P2, 80, "p2"):
        seen["published port"] = connect("outside", HOST, PUBLISHED)
    with serving("outside", OUTSIDE, 7000, "outside"):
        seen["outbound"] = connect("p1", OUTSIDE, 7000)
    return seen


def coexist(peer: Cni | Netavark, tmp_path: Path) -> None:
    base = private_dirs(tmp_path / "peers")
    build_outside()
    manifests = write_manifests(base / "manifests", CNM_SET)
    try:
        peer.add("p1", P1)
        peer.add("p2", P2, publish=True)
        assert peer_traffic() == PEER_EXPECTED
        peer_alone = side("peer", peer_files=peer.files)

        cnm_apply(manifests)
        assert_unchanged(peer_alone, side("peer", peer_files=peer.files),
                         "the peer's objects, by cnm's apply")
        cnm_applied = side("cnm")
        assert cnm_traffic() == CNM_EXPECTED
        assert peer_traffic() == PEER_EXPECTED

        # the peer's own apply and delete of a third container leave cnm's objects alone
        peer.add("p3", P3)
        assert_unchanged(cnm_applied, side("cnm"), "cnm's objects, by the peer's apply")
        assert cnm_traffic() == CNM_EXPECTED
        peer.delete("p3")
        assert_unchanged(cnm_applied, side("cnm"), "cnm's objects, by the peer's delete")
        peer_now = side("peer", peer_files=peer.files)  # its IPAM remembers p3's address

        cnm_delete(manifests)
        assert_unchanged(peer_now, side("peer", peer_files=peer.files),
                         "the peer's objects, by cnm's delete")
        assert peer_traffic() == PEER_EXPECTED
        assert side("cnm")["links"] == []

        # cnm first this time: the peer's delete leaves cnm's objects and traffic alone
        cnm_apply(manifests)
        cnm_again = side("cnm")
        peer.delete("p2")
        peer.delete("p1")
        assert_unchanged(cnm_again, side("cnm"), "cnm's objects, by the peer's delete")
        assert cnm_traffic() == CNM_EXPECTED
        cnm_delete(manifests)
    finally:
        end_children()
        subprocess.run(["ip", "-all", "netns", "delete"], check=False)


def test_cni_plugins_and_cnm_coexist(tmp_path: Path) -> None:
    coexist(Cni(tmp_path), tmp_path)


def test_netavark_and_cnm_coexist(tmp_path: Path) -> None:
    coexist(Netavark(tmp_path), tmp_path)

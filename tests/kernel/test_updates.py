"""In-place updates: MAC, interface name, addresses, routes and sandbox files change
without recreating links (ifindex kept); each re-plan afterwards is empty."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import addresses, cnm, ip_json, links, tcp_roundtrip

WORLD = """\
apiVersion: cnm/v1
kind: Network
metadata: {{name: net}}
spec: {{ipam: [{{subnet: 10.50.0.0/24}}, {{subnet: "fd00:50::/64"}}]}}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {{name: a}}
spec: {{hostname: alpha{dns}}}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {{name: b}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: a-net}}
spec: {{network: net, sandbox: a, ifname: {ifname}, macAddress: "{mac}",
       ipv4Address: {ip}, gateway: {gw}}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: b-net}}
spec: {{network: net, sandbox: b}}
"""


def _write(directory: Path, **values: str) -> Path:
    params = {"dns": "", "ifname": "eth0", "mac": "02:00:00:00:00:0a", "ip": "10.50.0.10",
              "gw": "true", **values}
    directory.mkdir(exist_ok=True)
    (directory / "world.yaml").write_text(WORLD.format(**params))
    return directory


def _plan(directory: Path) -> str:
    result = cnm("plan", "-f", str(directory), "--detailed-exitcode")
    assert result.returncode == 2, result.stdout + result.stderr
    return result.stdout


def _apply_and_check_empty(directory: Path) -> None:
    applied = cnm("apply", "-f", str(directory), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert cnm("plan", "-f", str(directory), "--detailed-exitcode").returncode == 0


def test_in_place_updates_keep_links(tmp_path: Path) -> None:
    world = _write(tmp_path / "m")
    _apply_and_check_empty(world)
    host_indexes = {name: link["ifindex"] for name, link in links().items()}
    peer_index = links("a")["eth0"]["ifindex"]

    # MAC, interface name, static address and the default route, all at once.
    _write(world, ifname="lan0", mac="02:00:00:00:00:0b", ip="10.50.0.20", gw="false")
    plan = _plan(world)
    assert "  ~ Endpoint/a-net" in plan
    for change in ("ifname: eth0 -> lan0", "mac: 02:00:00:00:00:0a -> 02:00:00:00:00:0b",
                   "ipv4: 10.50.0.10/24 -> 10.50.0.20/24", "gateway4: 10.50.0.1 -> (none)"):
        assert change in plan
    assert "-/+" not in plan and "  + " not in plan and "  - " not in plan
    _apply_and_check_empty(world)
    lan0 = links("a")["lan0"]
    assert lan0["ifindex"] == peer_index and lan0["address"] == "02:00:00:00:00:0b"
    assert "eth0" not in links("a")
    assert addresses("lan0", "a") == ["10.50.0.20/24", "fd00:50::2/64"]
    assert ip_json("route", "show", "default", netns="a") == []
    assert {name: link["ifindex"] for name, link in links().items()} == host_indexes
    found = subprocess.run(["ip", "netns", "exec", "b", "getent", "ahostsv4", "a-net"],
                           capture_output=True, text=True).stdout
    assert found.split()[:1] == ["10.50.0.20"]  # the resolver has the new address
    assert tcp_roundtrip("a", "b", "10.50.0.20") == "pong 10.50.0.2"

    # Sandbox files: adding DNS writes resolv.conf in place.
    _write(world, ifname="lan0", mac="02:00:00:00:00:0b", ip="10.50.0.20", gw="false",
           dns=", dns: {servers: [192.0.2.1], search: [corp.example]}")
    plan = _plan(world)
    assert "  ~ Sandbox/a" in plan and "files.resolv.conf: rewrite (+1 -0 lines)" in plan
    assert "upstreams: [] -> [a 192.0.2.1]" in plan  # the resolver's, for a
    inode = Path("/etc/netns/a/resolv.conf").stat().st_ino
    _apply_and_check_empty(world)
    resolv = Path("/etc/netns/a/resolv.conf")
    assert resolv.read_text().endswith("nameserver 10.50.0.1\nsearch corp.example\n")
    assert resolv.stat().st_ino == inode  # in place
    assert links("a")["lan0"]["ifindex"] == peer_index

"""An endpoint of one apply set on a network another set owns, against the kernel.

Set `a` applies a network, a sandbox and an endpoint; set `b` a sandbox and an
endpoint on a's network, with a published port. Checked with independent
observers: `ip -j` (the veth is a port of a's bridge, the address is the next
free one), `bridge -j` (hairpin on b's port), `nft -j` (b's port rules carry b's
marker, a's network rules stay a's), real TCP between the two sandboxes and to
b's published port from the host. Both sets re-plan empty; deleting a's network
while b uses it is refused and changes nothing; b goes, then a, and nothing is left.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from test_firewall import connect, serving

from helpers import (
    assert_same_kernel,
    cnm,
    ip_json,
    kernel_dump,
    links,
    netns_names,
    tcp_roundtrip,
    write_manifests,
)

A = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec: {ipam: [{subnet: 10.73.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: a1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: a1-front}
spec: {network: front, sandbox: a1}
"""
A_MORE = """\
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: a2}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: a2-front}
spec: {network: front, sandbox: a2}
"""
B = """\
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: b1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: b1-front}
spec: {network: front, sandbox: b1, ports: [{hostPort: 8080, containerPort: 80}]}
"""
HOST = "192.0.2.1"  # an address of the host itself (a veth link), for the published port


def _link_of(alias: str) -> dict[str, Any]:
    (found,) = [link for link in links().values() if link.get("ifalias", "").startswith(alias)]
    return found


def _nft_comments() -> list[str]:
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True,
                         check=True)
    return [item["rule"].get("comment", "") for item in json.loads(out.stdout)["nftables"]
            if "rule" in item]


def _getent(sandbox: str, name: str) -> list[str]:
    """The IPv4 addresses glibc finds for `name` inside `sandbox`."""
    found = subprocess.run(["ip", "netns", "exec", sandbox, "getent", "ahostsv4", name],
                           capture_output=True, text=True, timeout=30)
    return sorted({line.split()[0] for line in found.stdout.splitlines()})


def test_an_endpoint_joins_a_network_of_another_set(tmp_path: Path) -> None:
    subprocess.run(["ip", "link", "add", "host0", "type", "veth", "peer", "name", "host1"],
                   check=True)
    subprocess.run(["ip", "addr", "add", f"{HOST}/24", "dev", "host0"], check=True)
    for name in ("host0", "host1"):
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
    a = write_manifests(tmp_path / "a", A)
    b = write_manifests(tmp_path / "b", B)
    cnm("apply", "-f", str(a), "--set", "a", "--yes", check=True)

    # a bridge cnm did not mark is no network to join: one line, nothing changes
    from reconciler.naming import default_bridge_name

    subprocess.run(["ip", "link", "add", default_bridge_name("lonely"), "type", "bridge"],
                   check=True)
    lonely = write_manifests(tmp_path / "lonely", B.replace("network: front", "network: lonely"))
    before = kernel_dump()
    refused = cnm("apply", "-f", str(lonely), "--set", "b", "--yes")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"{lonely}/m.yaml:8: Endpoint/b1-front: spec.network: unknown network \"lonely\"; "
        "define a Network of that name (no Network is defined); nor does any apply set own "
        "one in the kernel"]
    assert_same_kernel(before, kernel_dump())
    subprocess.run(["ip", "link", "del", default_bridge_name("lonely")], check=True)

    # validate cannot read the kernel: valid, and it says where it would look
    checked = cnm("validate", "-f", str(b), check=True)
    assert checked.stdout.startswith("Valid: 2 objects")
    assert checked.stderr.splitlines() == [
        f"{b}/m.yaml:5: Endpoint/b1-front: spec.network: network \"front\" is not in these "
        "manifests; plan and apply look for it among the networks other apply sets own in "
        "the kernel"]
    plan = cnm("plan", "-f", str(b), "--set", "b", check=True).stdout
    lines = [line.strip() for line in plan.splitlines() if line.startswith("  ")]
    assert not any("Network/" in line or "Resolver/" in line for line in lines), plan
    (joining,) = [line for line in lines if line.startswith("+ Endpoint/b1-front")]
    assert "10.73.0.3/24  (network front of set 'a')  ports 8080->80/tcp" in joining, joining
    cnm("apply", "-f", str(b), "--set", "b", "--yes", check=True)

    bridge = _link_of("cnm/v1 set=a Network/front")
    veth = _link_of("cnm/v1 set=b Endpoint/b1-front")
    assert veth["master"] == bridge["ifname"]
    inside = [a["local"] for link in ip_json("addr", "show", "dev", "eth0", netns="b1")
              for a in link["addr_info"] if a["family"] == "inet"]
    assert inside == ["10.73.0.3"]  # a1-front holds .2
    ports = {p["ifname"]: p for p in json.loads(subprocess.run(
        ["bridge", "-j", "-d", "link", "show"], capture_output=True, text=True,
        check=True).stdout)}
    assert ports[veth["ifname"]]["hairpin"] is True  # b's endpoint publishes a port
    comments = _nft_comments()
    assert "cnm/v1 set=b Endpoint/b1-front port 8080->80/tcp" in comments
    assert "cnm/v1 set=a Network/front isolation" in comments
    assert not any(c.startswith("cnm/v1 set=b Network/") for c in comments)

    # real traffic: sandbox to sandbox both ways, and b's published port from the host
    assert tcp_roundtrip("a1", "b1", "10.73.0.2") == "pong 10.73.0.3"
    assert tcp_roundtrip("b1", "a1", "10.73.0.3") == "pong 10.73.0.2"
    with serving("b1", "0.0.0.0", 80, name="b1"):
        assert connect(None, HOST, 8080) == f"b1 {HOST}"
        assert (connect(None, "127.0.0.1", 8080) or "").startswith("b1 ")

    # names do not cross sets: a's resolver answers a's names only, b has none (so b1
    # asks the host's resolvers, unreachable here) and no resolv.conf of cnm's
    assert _getent("a1", "a1-front") == ["10.73.0.2"]
    assert _getent("a1", "b1-front") == [] and _getent("a1", "b1") == []
    assert not Path("/run/cnm/resolver/b").exists()
    assert not Path("/etc/netns/b1/resolv.conf").exists()
    assert _getent("b1", "a1-front") == []

    exported = cnm("export", "--set", "b", check=True).stdout  # round-trips, without a Network
    assert "kind: Network" not in exported and "network: front" in exported
    (tmp_path / "export.yaml").write_text(exported)
    assert cnm("plan", "-f", str(tmp_path / "export.yaml"), "--set", "b",
               check=True).stdout.startswith("No changes.")
    got = json.loads(cnm("get", "endpoints", "-o", "json", check=True).stdout)
    assert sorted((e["set"], e["name"]) for e in got) == [("a", "a1-front"), ("b", "b1-front")]
    assert [row.split() for row in cnm("get", "sets", check=True).stdout.splitlines()[1:]] == [
        ["a", "1", "1", "1", "1", "4"], ["b", "0", "1", "1", "0", "2"]]
    for name, manifests in (("a", a), ("b", b)):
        again = cnm("plan", "-f", str(manifests), "--set", name, check=True).stdout
        assert again.startswith("No changes."), again

    # a grows: its new endpoint skips b's address, and a's verification passes
    write_manifests(tmp_path / "a", A + A_MORE)
    cnm("apply", "-f", str(a), "--set", "a", "--yes", check=True)
    assert [x["local"] for link in ip_json("addr", "show", "dev", "eth0", netns="a2")
            for x in link["addr_info"] if x["family"] == "inet"] == ["10.73.0.4"]
    assert cnm("plan", "-f", str(b), "--set", "b", check=True).stdout.startswith("No changes.")

    # a's network is b's too: deleting or pruning it is refused, and nothing changes
    before = kernel_dump()
    for attempt in (("delete", "-f", str(a), "--set", "a", "--yes"),
                    ("apply", "-f", str(write_manifests(tmp_path / "a-less", "apiVersion: "
                     "cnm/v1\nkind: Sandbox\nmetadata: {name: a1}\n")), "--set", "a", "--yes")):
        refused = cnm(*attempt)
        assert refused.returncode == 1, refused
        (line,) = refused.stderr.splitlines()
        assert "Network/front" in line and "Endpoint/b1-front of set 'b'" in line, line
        assert_same_kernel(before, kernel_dump())
    assert _link_of("cnm/v1 set=b Endpoint/b1-front")["ifname"] == veth["ifname"]

    cnm("delete", "-f", str(b), "--set", "b", "--yes", check=True)
    assert _link_of("cnm/v1 set=a Network/front")["ifname"] == bridge["ifname"]
    assert cnm("plan", "-f", str(a), "--set", "a", check=True).stdout.startswith("No changes.")
    cnm("delete", "-f", str(a), "--set", "a", "--yes", check=True)
    assert netns_names() == [] and sorted(links()) == ["host0", "host1", "lo"]
    assert not any(c.startswith("cnm/v1") for c in _nft_comments())


def test_icc_off_holds_for_an_endpoint_of_another_set(tmp_path: Path) -> None:
    a = write_manifests(tmp_path / "a", A.replace("{ipam: [{subnet: 10.73.0.0/24}]}",
                                                  "{icc: false, ipam: [{subnet: 10.73.0.0/24}]}"))
    b = write_manifests(tmp_path / "b", B)
    cnm("apply", "-f", str(a), "--set", "a", "--yes", check=True)
    cnm("apply", "-f", str(b), "--set", "b", "--yes", check=True)
    comments = _nft_comments()
    assert "cnm/v1 set=a Network/front icc" in comments  # a's, for a's ports
    assert "cnm/v1 set=b Endpoint/b1-front icc" in comments  # b's own port's drop
    with serving("a1", "0.0.0.0", 5000, name="a1"), serving("b1", "0.0.0.0", 5000, name="b1"):
        assert connect(None, "10.73.0.2", 5000) == "a1 10.73.0.1"  # the servers answer
        assert connect(None, "10.73.0.3", 5000) == "b1 10.73.0.1"
        assert connect("b1", "10.73.0.2", 5000, timeout=1.0) is None
        assert connect("a1", "10.73.0.3", 5000, timeout=1.0) is None
    for name, manifests in (("a", a), ("b", b)):
        again = cnm("plan", "-f", str(manifests), "--set", name, check=True).stdout
        assert again.startswith("No changes."), again
    cnm("delete", "-f", str(b), "--set", "b", "--yes", check=True)
    assert "cnm/v1 set=b Endpoint/b1-front icc" not in _nft_comments()
    cnm("delete", "-f", str(a), "--set", "a", "--yes", check=True)
    assert netns_names() == [] and sorted(links()) == ["lo"]

"""The macvlan, null and host drivers against the real kernel."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import (
    addresses,
    assert_same_kernel,
    cnm,
    kernel_dump,
    links,
    netns_names,
    tcp_roundtrip,
)

MACVLAN = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: lan}
spec:
  driver: macvlan
  parent: up0
  mode: bridge
  ipam: [{subnet: 10.60.0.0/24, gateway: 10.60.0.254}]
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: m1}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: m2}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: m1-lan}
spec: {network: lan, sandbox: m1, ipv4Address: 10.60.0.11}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: m2-lan}
spec: {network: lan, sandbox: m2}
"""


def test_macvlan_children_of_a_veth_parent_talk(tmp_path: Path) -> None:
    subprocess.run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"],
                   check=True)
    subprocess.run(["ip", "link", "set", "up0", "up"], check=True)
    subprocess.run(["ip", "link", "set", "up1", "up"], check=True)
    (tmp_path / "m.yaml").write_text(MACVLAN)
    plan = cnm("plan", "-f", str(tmp_path))
    assert "  + Endpoint/m1-lan  macvlan up0 -> m1:eth0  10.60.0.11/24" in plan.stdout
    applied = cnm("apply", "-f", str(tmp_path), "--yes")
    assert applied.returncode == 0, applied.stderr

    child = links("m1")["eth0"]
    assert child["linkinfo"]["info_kind"] == "macvlan"
    assert child["linkinfo"]["info_data"]["mode"] == "bridge"
    assert child["link_index"] == links()["up0"]["ifindex"]
    assert addresses("eth0", "m1") == ["10.60.0.11/24"]
    assert addresses("eth0", "m2") == ["10.60.0.1/24"]
    assert [name for name in links() if name.startswith(("cnm", "br-"))] == []
    assert tcp_roundtrip("m1", "m2", "10.60.0.11") == "pong 10.60.0.1"
    assert cnm("plan", "-f", str(tmp_path), "--detailed-exitcode").returncode == 0

    # A missing parent is a plan-time error naming it; nothing changes.
    dump = kernel_dump()
    (tmp_path / "m.yaml").write_text(MACVLAN.replace("parent: up0", "parent: nosuch0"))
    refused = cnm("apply", "-f", str(tmp_path), "--yes")
    assert refused.returncode == 1
    assert "spec.parent: host link nosuch0 does not exist" in refused.stderr
    assert_same_kernel(dump, kernel_dump())

    (tmp_path / "m.yaml").write_text(MACVLAN)
    assert cnm("delete", "-f", str(tmp_path), "--yes").returncode == 0
    assert netns_names() == [] and "up0" in links() and "up1" in links()


def test_null_driver_sandbox_has_only_loopback(tmp_path: Path) -> None:
    (tmp_path / "n.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: none}\nspec: {driver: 'null'}\n"
        "---\napiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: lonely}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: lonely-none}\n"
        "spec: {network: none, sandbox: lonely}\n"
    )
    plan = cnm("plan", "-f", str(tmp_path))
    assert plan.stdout.startswith("Plan: 1 to create") and "  + Sandbox/lonely" in plan.stdout
    assert cnm("apply", "-f", str(tmp_path), "--yes").returncode == 0
    assert netns_names() == ["lonely"]
    assert list(links("lonely")) == ["lo"]
    assert "UP" in links("lonely")["lo"]["flags"]
    assert list(links()) == ["lo"]
    assert cnm("plan", "-f", str(tmp_path), "--detailed-exitcode").returncode == 0


def test_host_driver_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: host}\nspec: {driver: host}\n"
        "---\napiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: hostmode}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: hostmode-host}\n"
        "spec: {network: host, sandbox: hostmode}\n"
    )
    before = kernel_dump()
    plan = cnm("plan", "-f", str(tmp_path), "--detailed-exitcode")
    assert plan.returncode == 0 and plan.stdout.startswith("No changes.")
    assert cnm("apply", "-f", str(tmp_path), "--yes").returncode == 0
    assert_same_kernel(before, kernel_dump())

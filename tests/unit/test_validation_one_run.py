"""Validation reports every problem in one run, and a clash names both sides' file:line
(through the real console script)."""

from __future__ import annotations

from pathlib import Path

from test_plan_lines_cli import cnm

FIRST = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec: {driver: bridge, ipam: [{subnet: 10.8.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: broken}
spec: {driver: bridge, mtu: "lots"}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web-front}
spec:
  network: front
  sandbox: web
  ifname: eth0
  gateway: true
"""
SECOND = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: back}
spec: {driver: bridge, ipam: [{subnet: 10.9.0.0/24}]}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web-back}
spec:
  network: back
  sandbox: web
  ifname: eth0
  gateway: true
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web-broken}
spec: {network: broken, sandbox: web, ifname: eth1, gateway: false}
"""


def test_schema_and_cross_object_problems_in_one_run_naming_both_sides(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FIRST)
    (tmp_path / "b.yaml").write_text(SECOND)
    result = cnm("validate", "-f", str(tmp_path))
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    a, b = str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")
    # the schema problem of a.yaml ...
    assert any(line.startswith(f"{a}:9: Network/broken: spec.mtu: ") for line in lines), lines
    # ... and, in the same run, both clashes, each naming the other side's file:line
    ifname = next(line for line in lines if "spec.ifname" in line)
    assert ifname.startswith(f"{a}:21: Endpoint/web-front: spec.ifname: ")
    assert f"Endpoint/web-back ({b}:12)" in ifname
    gateway = next(line for line in lines if "spec.gateway" in line)
    assert gateway.startswith(f"{a}:22: Endpoint/web-front: spec.gateway: ")
    assert f"Endpoint/web-back ({b}:13)" in gateway and "default route of Sandbox/web" in gateway
    # the endpoint on the network that did not load is not called "unknown" again
    assert not any("unknown network" in line for line in lines), lines
    assert len(lines) == 3, lines


def test_a_file_that_does_not_parse_still_leaves_the_others_checked(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FIRST.replace('mtu: "lots"', "mtu: 1500"))
    (tmp_path / "b.yaml").write_text(SECOND)
    (tmp_path / "c.yaml").write_text("kind: [unclosed\n")
    result = cnm("validate", "-f", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith(str(tmp_path / "c.yaml")) for line in lines)
    assert sum("spec.ifname" in line for line in lines) == 1
    assert not any("unknown" in line for line in lines), lines

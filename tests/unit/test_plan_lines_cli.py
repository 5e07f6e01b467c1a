"""Plan lines beside the actions, through the real console script: host-wide settings,
the Firewall and BridgePorts steps, the prune line, endpoints without a sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "cases"


def cnm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=60, check=False)


def _snapshot(tmp_path: Path, case: str, **changes: object) -> Path:
    data = json.loads((CASES / case / "observed.json").read_text())
    data.update(changes)
    path = tmp_path / "observed.json"
    path.write_text(json.dumps(data))
    return path


def test_a_host_wide_setting_is_a_line_of_its_own_in_every_format(tmp_path: Path) -> None:
    manifests = str(CASES / "create-from-scratch" / "manifests")
    both_off = _snapshot(tmp_path, "create-from-scratch", host_settings={
        "net.ipv4.ip_forward": 0, "net.ipv6.conf.all.forwarding": 0})
    text = cnm("plan", "-f", manifests, "--observed", str(both_off))
    assert text.returncode == 0, text.stderr
    host_lines = [line for line in text.stdout.splitlines() if "Host/" in line]
    assert [line.split()[:4] for line in host_lines] == [
        ["~", "Host/net.ipv4.ip_forward", "0", "->"],
        ["~", "Host/net.ipv6.conf.all.forwarding", "0", "->"]]
    assert "accept_ra=1" in host_lines[1]
    document = json.loads(cnm("plan", "-f", manifests, "--observed", str(both_off),
                              "-o", "json").stdout)
    assert [(s["setting"], s["old"], s["new"]) for s in document["host_settings"]] == [
        ("net.ipv4.ip_forward", 0, 1), ("net.ipv6.conf.all.forwarding", 0, 1)]
    markdown = cnm("plan", "-f", manifests, "--observed", str(both_off), "-o", "markdown")
    assert "| `~` | Host/net.ipv6.conf.all.forwarding | 0 -> 1 (host-wide" in markdown.stdout
    # already on: no line
    both_on = _snapshot(tmp_path, "create-from-scratch", host_settings={
        "net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
    again = cnm("plan", "-f", manifests, "--observed", str(both_on))
    assert "Host/" not in again.stdout and "+ Network/frontend" in again.stdout


def test_every_step_apply_runs_is_in_the_plan(tmp_path: Path) -> None:
    manifests = str(CASES / "create-from-scratch" / "manifests")
    observed = str(CASES / "create-from-scratch" / "observed.json")
    text = cnm("plan", "-f", manifests, "--observed", observed).stdout
    assert "  ~ Firewall/default" in text and "  ~ BridgePorts/default" in text
    document = json.loads(cnm("plan", "-f", manifests, "--observed", observed, "-o",
                              "json").stdout)
    steps = document["steps"]
    assert steps[0] == "update Firewall/default" and steps[-1] == "update BridgePorts/default"
    objects = {f"{a['kind']}/{a['name']}" for a in document["actions"]}
    assert {step.split(" ", 1)[1] for step in steps[1:-1]} == objects


def test_the_prune_line_says_how_many_of_how_many_up_front(tmp_path: Path) -> None:
    case = CASES / "prune-and-drift"
    text = cnm("plan", "-f", str(case / "manifests"), "--observed",
               str(case / "observed.json")).stdout.splitlines()
    owned = len(json.loads((case / "observed.json").read_text())["resources"])
    assert text[1] == (f"1 of the {owned} objects apply set 'default' owns is not in these "
                       "manifests: this apply deletes it.")
    # an extra directory alone: everything else of the set would go, and the plan says so
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(case / "manifests" / next(p.name for p in (case / "manifests").iterdir()
                                          if "sandbox" in p.name), extra / "only.yaml")
    only = cnm("plan", "-f", str(extra), "--observed", str(case / "observed.json"))
    header, prune = only.stdout.splitlines()[:2]
    deletes = int(header.split(", ")[2].split()[0])
    assert prune.startswith(f"{deletes} of the {owned} objects apply set 'default' owns are "
                            "not in these manifests")
    document = json.loads(cnm("plan", "-f", str(extra), "--observed",
                              str(case / "observed.json"), "-o", "json").stdout)
    assert document["prune"]["delete"] == deletes and document["prune"]["owned"] == owned


def test_an_endpoint_without_a_sandbox_is_a_visible_line(tmp_path: Path) -> None:
    manifests = tmp_path / "m.yaml"
    manifests.write_text(
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: n}\n"
        "spec: {driver: bridge, ipam: [{subnet: 10.5.0.0/24}]}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: lonely}\n"
        "spec: {network: n, ports: [{hostPort: 8080, containerPort: 80}]}\n")
    observed = str(CASES / "create-from-scratch" / "observed.json")
    assert "1 endpoints" in cnm("validate", "-f", str(manifests)).stdout
    text = cnm("plan", "-f", str(manifests), "--observed", observed).stdout
    line = next(line for line in text.splitlines() if "Endpoint/lonely" in line)
    assert line.split()[:2] == ["=", "Endpoint/lonely"]
    assert "not joined to a sandbox" in line and "published port" in line
    document = json.loads(cnm("plan", "-f", str(manifests), "--observed", observed,
                              "-o", "json").stdout)
    assert document["unjoined"] == ["lonely"]

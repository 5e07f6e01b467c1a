"""Issue 15 against the real kernel: Docker's firewall (FORWARD policy drop, DOCKER-USER,
written with iptables-nft as dockerd writes it) next to cnm's networks.

Each test runs twice, with br_netfilter's bridge-nf-call-iptables off and on in its
fresh namespace (tests/kernel/bridge_nf.py). The plan names the drop; apply adds
cnm's marked accepts to DOCKER-USER; then real TCP between two sandboxes of one
network, a published port from another namespace and outbound masquerade all work;
Docker's rules are the same, byte for byte, before and after; a dockerd restart's
rewrite is drift that plan shows and apply repairs; delete removes only cnm's rules.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker_layout
from bridge_nf import bridge_nf  # noqa: F401  (runs every test with br_netfilter off and on)
from test_firewall import HOST, OUTSIDE, build_outside, connect, serving

from helpers import cnm, write_manifests

WORLD = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec: {ipam: [{subnet: 10.89.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web2}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web}
spec:
  network: front
  sandbox: web
  ipv4Address: 10.89.0.10
  ports: [{containerPort: 80, hostPort: 8080}]
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web2}
spec: {network: front, sandbox: web2, ipv4Address: 10.89.0.20}
"""

PROBLEM = ("PROBLEM Network/front: forwarded traffic (between sandboxes, outbound, replies, "
           "published ports) on br-front is dropped by table ip filter chain FORWARD, "
           "policy drop (Docker)")


def _bridge_nf_on() -> bool:
    try:
        return Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1"
    except OSError:
        return False


def _docker_user() -> list[str]:
    out = subprocess.run(["iptables-nft", "-S", "DOCKER-USER"], capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


def _all_paths_work() -> None:
    with serving("web", "10.89.0.10", 80, name="web"):
        assert connect("web2", "10.89.0.10", 80) == "web 10.89.0.20"  # same network
        assert connect("outside", HOST, 8080) == f"web {OUTSIDE}"  # a published port
    with serving("outside", OUTSIDE, 7000, name="outside"):
        assert connect("web", OUTSIDE, 7000) == f"outside {HOST}"  # masqueraded


def _plan(manifests: Path) -> subprocess.CompletedProcess[str]:
    return cnm("plan", "-f", str(manifests), "--detailed-exitcode")


def test_docker_forward_drop_is_seen_and_allowed_in_docker_user(tmp_path: Path) -> None:
    build_outside()
    docker_layout.install()
    docker_before = docker_layout.save()
    manifests = write_manifests(tmp_path / "m", WORLD)

    plan = _plan(manifests)
    assert plan.returncode == 2, plan.stderr
    labels = "between sandboxes, outbound" if _bridge_nf_on() else "outbound"
    expected = PROBLEM.replace("between sandboxes, outbound", labels)
    assert f"{expected}; apply adds accepts in ip filter DOCKER-USER" in plan.stdout
    document = json.loads(cnm("plan", "-f", str(manifests), "-o", "json").stdout)
    assert len(document["problems"]) == 1

    cnm("apply", "-f", str(manifests), "--yes", check=True)
    marker = "cnm/v1 set=default Network/front host-accept"
    assert _docker_user() == [
        "-N DOCKER-USER",
        f'-A DOCKER-USER -i br-front -m comment --comment "{marker}" -j ACCEPT',
        f'-A DOCKER-USER -o br-front -m comment --comment "{marker}" -j ACCEPT',
        "-A DOCKER-USER -j RETURN",
    ]
    _all_paths_work()
    again = _plan(manifests)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "PROBLEM" not in again.stdout
    # Docker's own rules: the same, byte for byte, but for cnm's two marked lines
    assert docker_layout.without_cnm(docker_layout.save()) == docker_before

    cnm("delete", "-f", str(manifests), "--yes", check=True)
    assert docker_layout.save() == docker_before


def test_docker_restart_is_drift_that_apply_repairs(tmp_path: Path) -> None:
    build_outside()
    docker_layout.install()
    manifests = write_manifests(tmp_path / "m", WORLD)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    applied = docker_layout.save()

    docker_layout.restart_rewrite()  # DOCKER-USER holds Docker's RETURN only
    with serving("outside", OUTSIDE, 7000, name="outside"):
        assert connect("web", OUTSIDE, 7000, timeout=1.0) is None  # really dropped now
    plan = _plan(manifests)
    assert plan.returncode == 2
    assert "~ Network/front  host_firewall: (none) -> [ip filter DOCKER-USER]" in plan.stdout
    assert "PROBLEM Network/front" in plan.stdout

    # a rewrite that left cnm's rules below Docker's RETURN is drift too
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    subprocess.run(["iptables-nft", "-I", "DOCKER-USER", "-j", "RETURN"], check=True)
    misplaced = _plan(manifests)
    assert "ip filter DOCKER-USER (rules differ)" in misplaced.stdout
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    # cnm never deletes a rule it did not mark: Docker's extra RETURN stays, below cnm's
    assert _docker_user()[-2:] == ["-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j RETURN"]
    subprocess.run(["iptables-nft", "-D", "DOCKER-USER", "-j", "RETURN"], check=True)
    assert docker_layout.save() == applied
    _all_paths_work()
    assert _plan(manifests).returncode == 0


def test_other_sets_and_unmarked_rules_are_left_alone(tmp_path: Path) -> None:
    docker_layout.install()
    # someone's own accept for a cnm bridge, without cnm's marker, and another set's
    subprocess.run(["iptables-nft", "-I", "DOCKER-USER", "-i", "br-front", "-j", "ACCEPT"],
                   check=True)
    other = WORLD.replace("front", "back").replace("10.89.0", "10.90.0").replace(
        "web", "db").replace("hostPort: 8080", "hostPort: 8081")
    cnm("apply", "-f", str(write_manifests(tmp_path / "o", other)), "--set", "other", "--yes",
        check=True)
    before = docker_layout.save()
    manifests = write_manifests(tmp_path / "m", WORLD)
    cnm("apply", "-f", str(manifests), "--yes", check=True)
    cnm("delete", "-f", str(manifests), "--yes", check=True)
    assert docker_layout.save() == before
    assert "-A DOCKER-USER -i br-front -j ACCEPT" in _docker_user()


def test_watch_repairs_a_docker_restart(tmp_path: Path) -> None:
    from watchlib import Watch

    build_outside()
    docker_layout.install()
    manifests = write_manifests(tmp_path / "m", WORLD)
    watch = Watch("-f", str(manifests), "--resync", "600")
    try:
        watch.started()
        assert watch.wait_line(lambda line: "applied" in line, timeout=30)
        applied = docker_layout.save()
        seen = len(watch.lines)
        docker_layout.restart_rewrite()  # the nftables notification wakes watch up
        watch.wait_line(lambda line: "applied" in line, timeout=30, after=seen)
        assert docker_layout.save() == applied
        _all_paths_work()
        # a drop cnm cannot resolve is logged as a problem
        subprocess.run(["nft", "add table ip other; add chain ip other gate { type filter hook "
                        "forward priority 10; policy drop; }"], check=True)
        line = watch.wait_line(lambda line: "PROBLEM" in line, timeout=30, after=seen)
        assert "is dropped by table ip other chain gate, policy drop; to allow it" in line
    finally:
        watch.kill()

"""Issue 2 end to end against the real kernel, each test in its own fresh namespaces.

apply -> check with `ip -j` and real TCP -> re-plan empty -> change one thing
(only that changes, links keep their ifindex) -> drift by hand is shown and
repaired -> delete leaves nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from helpers import (
    EXAMPLE,
    addresses,
    assert_same_kernel,
    cnm,
    ip_json,
    kernel_dump,
    links,
    netns_names,
    tcp_roundtrip,
)


def _quickstart(tmp_path: Path) -> Path:
    target = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.sh"))
    return target


def _cnm_links() -> list[str]:
    return sorted(name for name in links() if name.startswith(("cnm", "br-")))


def test_apply_connect_replan_change_and_delete(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    applied = cnm("apply", "-f", str(manifests), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "Verified: plan is now empty" in applied.stderr

    bridge = links()["br-frontend"]
    assert "UP" in bridge["flags"] and bridge["mtu"] == 1500
    assert bridge["linkinfo"]["info_kind"] == "bridge"
    assert addresses("br-frontend") == ["10.89.0.1/24", "fd00:89::1/64"]
    assert netns_names() == ["web1", "web2"]
    eth0 = links("web1")["eth0"]
    assert eth0["address"] == "02:42:0a:59:00:0a" and "UP" in eth0["flags"]
    assert addresses("eth0", "web1") == ["10.89.0.10/24", "fd00:89::2/64"]
    assert addresses("eth0", "web2") == ["10.89.0.128/24", "fd00:89::3/64"]
    routes = ip_json("route", "show", "default", netns="web1")
    assert [(r["dst"], r["gateway"], r["dev"]) for r in routes] == [
        ("default", "10.89.0.1", "eth0")
    ]
    host_ends = [link for link in links().values() if link.get("master") == "br-frontend"]
    assert len(host_ends) == 2
    assert Path("/etc/netns/web1/hostname").read_text() == "web1\n"
    assert "10.89.0.10\tweb1.example.org web1\n" in Path("/etc/netns/web1/hosts").read_text()
    assert "web1-front" not in Path("/etc/netns/web2/hosts").read_text()  # the resolver's
    web1_resolv = Path("/etc/netns/web1/resolv.conf").read_text()  # dns.servers: upstreams
    assert "nameserver 10.89.0.1\n" in web1_resolv and "search example.org" in web1_resolv
    assert Path("/etc/netns/web2/resolv.conf").read_text().endswith("nameserver 10.89.0.1\n")

    assert tcp_roundtrip("web1", "web2", "10.89.0.10") == "pong 10.89.0.128"
    assert tcp_roundtrip("web2", "web1", "fd00:89::3") == "pong fd00:89::2"

    replan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout + replan.stderr
    assert replan.stdout.startswith("No changes.")

    # Change one thing: the MTU. Only MTUs change, in place.
    before = {name: link["ifindex"] for name, link in links().items()}
    before_web1 = links("web1")["eth0"]["ifindex"]
    network_file = manifests / "network.yaml"
    network_file.write_text(network_file.read_text().replace("mtu: 1500", "mtu: 9000"))
    plan = cnm("plan", "-f", str(manifests), "-o", "json", "--detailed-exitcode")
    assert plan.returncode == 2
    document = json.loads(plan.stdout)
    assert document["summary"] == {"create": 0, "update": 3, "delete": 0, "replace": 0}
    changed = {(a["kind"], a["name"]): a["changes"] for a in document["actions"]}
    assert changed[("Network", "frontend")] == [{"path": "mtu", "old": 1500, "new": 9000}]
    assert changed[("Endpoint", "web1-front")] == [{"path": "mtu", "old": 1500, "new": 9000}]
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    after = {name: link["ifindex"] for name, link in links().items()}
    assert after == before
    assert links("web1")["eth0"]["ifindex"] == before_web1
    assert links()["br-frontend"]["mtu"] == 9000 and links("web2")["eth0"]["mtu"] == 9000
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0

    deleted = cnm("delete", "-f", str(manifests), "--yes")
    assert deleted.returncode == 0, deleted.stderr
    # delete speaks of deletion, counting what it deleted (the quickstart's 5 objects)
    assert re.search(r"^Delete complete: 6 deleted in [0-9.]+ s\.", deleted.stderr, re.M), \
        deleted.stderr
    assert "apply" not in deleted.stderr.lower()
    assert "\x1b" not in deleted.stdout + deleted.stderr  # a pipe: no escape codes
    assert _cnm_links() == []
    assert netns_names() == []
    assert not Path("/etc/netns/web1").exists() and not Path("/etc/netns/web2").exists()
    assert list(links()) == ["lo"]


def test_drift_by_hand_is_shown_and_repaired(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    # Which host end is web1's? cnm get tells; ip -j confirms it sits on the bridge.
    get = cnm("get", "endpoints", "-o", "json", check=True)
    by_name = {r["name"]: r["attrs"] for r in json.loads(get.stdout)}
    web1_veth = by_name["web1-front"]["veth"]
    assert links()[web1_veth]["master"] == "br-frontend"
    as_yaml = cnm("get", "networks", "-o", "yaml", check=True).stdout
    assert as_yaml.startswith("- kind: Network\n  name: frontend\n")
    table = cnm("get", check=True).stdout.splitlines()
    assert [row.split()[:2] for row in table] == [
        ["SET", "OBJECT"], ["default", "Network/frontend"], ["default", "Sandbox/web1"],
        ["default", "Sandbox/web2"], ["default", "Endpoint/web1-front"],
        ["default", "Endpoint/web2-front"], ["default", "Resolver/default"]]
    untouched_index = links()[by_name["web2-front"]["veth"]]["ifindex"]

    subprocess.run(["ip", "link", "del", web1_veth], check=True)
    subprocess.run(["ip", "-n", "web2", "addr", "del", "10.89.0.128/24", "dev", "eth0"],
                   check=True)
    subprocess.run(["ip", "-n", "web2", "addr", "add", "10.89.0.99/24", "dev", "eth0"],
                   check=True)
    Path("/etc/netns/web1/hostname").write_text("tampered\n")

    plan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
    assert plan.returncode == 2
    text = plan.stdout
    assert "  + Endpoint/web1-front" in text
    assert "  ~ Endpoint/web2-front" in text and "ipv4: 10.89.0.99/24 -> 10.89.0.128/24" in text
    assert "  ~ Sandbox/web1" in text and "files.hostname: tampered -> web1" in text

    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    assert web1_veth in links()
    assert links()[by_name["web2-front"]["veth"]]["ifindex"] == untouched_index
    assert addresses("eth0", "web2") == ["10.89.0.128/24", "fd00:89::3/64"]
    assert Path("/etc/netns/web1/hostname").read_text() == "web1\n"
    assert tcp_roundtrip("web1", "web2", "10.89.0.10") == "pong 10.89.0.128"
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0


def test_dry_run_and_plan_change_nothing(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    empty = kernel_dump()
    assert cnm("plan", "-f", str(manifests)).returncode == 0
    dry = cnm("apply", "-f", str(manifests), "--dry-run")
    assert dry.returncode == 0 and "6 to create" in dry.stdout  # the resolver too
    assert_same_kernel(empty, kernel_dump())

    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    (manifests / "endpoints.yaml").unlink()
    applied = kernel_dump()
    dry = cnm("apply", "-f", str(manifests), "--dry-run")
    assert "  - Endpoint/web1-front" in dry.stdout
    assert cnm("plan", "-f", str(manifests)).returncode == 0
    assert_same_kernel(applied, kernel_dump())


def test_invalid_manifests_change_nothing(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    applied = kernel_dump()
    (manifests / "bad.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: bad}\n"
        "spec:\n  network: nowhere\n"
    )
    result = cnm("apply", "-f", str(manifests), "--yes")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{manifests / 'bad.yaml'}:5: Endpoint/bad: spec.network:")
    assert_same_kernel(applied, kernel_dump())


def test_foreign_objects_are_never_touched(tmp_path: Path) -> None:
    subprocess.run(["ip", "link", "add", "br-foreign", "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.77.0.1/24", "dev", "br-foreign"], check=True)
    subprocess.run(["ip", "link", "add", "fv0", "type", "veth", "peer", "name", "fv1"],
                   check=True)
    subprocess.run(["ip", "netns", "add", "foreign"], check=True)
    subprocess.run(["ip", "-n", "foreign", "link", "set", "lo", "up"], check=True)
    Path("/etc/netns/foreign").mkdir(parents=True)
    Path("/etc/netns/foreign/hosts").write_text("10.77.0.9 mine\n")

    def foreign() -> object:
        dump = kernel_dump()
        host = [link for link in dump["None"]["links"]
                if link["ifname"] in ("br-foreign", "fv0", "fv1")]
        return host, dump["foreign"], dump["files"]["/etc/netns/foreign/hosts"]

    before = foreign()
    manifests = _quickstart(tmp_path)
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    assert cnm("delete", "-f", str(manifests), "--yes").returncode == 0
    assert foreign() == before

    # A name collision with a foreign object is a plan-time error naming it; nothing changes.
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "n.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: x}\n"
        "spec: {bridge: br-foreign, ipam: [{subnet: 10.78.0.0/24}]}\n"
        "---\napiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: foreign}\n"
    )
    dump = kernel_dump()
    result = cnm("apply", "-f", str(clash), "--yes")
    assert result.returncode == 1
    assert "link br-foreign is taken by link br-foreign (not owned by cnm)" in result.stderr
    assert "netns foreign is taken by netns foreign (not owned by cnm)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_same_kernel(dump, kernel_dump())


def test_sets_prune_only_their_own_objects(tmp_path: Path) -> None:
    front = _quickstart(tmp_path)
    back = tmp_path / "backend"
    back.mkdir()
    (back / "all.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: backend}\n"
        "spec: {ipam: [{subnet: 10.90.0.0/24}]}\n---\n"
        "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: db}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: db-back}\n"
        "spec: {network: backend, sandbox: db}\n"
    )
    assert cnm("apply", "-f", str(front), "--yes").returncode == 0
    assert cnm("apply", "-f", str(back), "--yes", "--set", "backend").returncode == 0
    backend_before = kernel_dump()["db"]

    (front / "endpoints.yaml").write_text(
        (front / "endpoints.yaml").read_text().split("---")[0]
    )
    plan = cnm("plan", "-f", str(front))
    assert "  - Endpoint/web2-front" in plan.stdout
    assert "Sandbox/db" not in plan.stdout and "backend" not in plan.stdout
    assert cnm("apply", "-f", str(front), "--yes").returncode == 0
    assert addresses("eth0", "web1") == ["10.89.0.10/24", "fd00:89::2/64"]
    assert links("web2") .keys() == {"lo"}
    assert kernel_dump()["db"] == backend_before

    # An empty manifest set never prunes a whole set by accident.
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = cnm("apply", "-f", str(empty), "--yes", "--set", "backend")
    assert refused.returncode == 1 and "--allow-empty" in refused.stderr
    assert kernel_dump()["db"] == backend_before
    allowed = cnm("apply", "-f", str(empty), "--yes", "--set", "backend", "--allow-empty")
    assert allowed.returncode == 0
    assert "db" not in netns_names() and "web1" in netns_names()


def test_manifests_from_stdin(tmp_path: Path) -> None:
    text = "".join(
        p.read_text() + "\n---\n" for p in sorted(EXAMPLE.glob("*.yaml"))
    )
    result = cnm("plan", "-f", "-", stdin=text)
    assert result.returncode == 0 and "6 to create" in result.stdout
    assert os.listdir("/run/netns") == []

"""Apply sets side by side, and the plan lines beside the actions, against the kernel.

`cnm get` lists every set's objects (checked against `ip -j`), `get sets` counts
them, `get -o mermaid` draws them; a host-wide sysctl is a plan line and is on
afterwards (read from /proc); every step apply runs was in the plan; a saved
plan applied twice says so; each set re-plans empty and is torn down.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import assert_same_kernel, cnm, kernel_dump, links, netns_names, write_manifests

INFRA = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: shared}
spec: {driver: bridge, ipam: [{subnet: 10.71.0.0/24}, {subnet: "fd00:71::/64"}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: router}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: router-shared}
spec: {network: shared, sandbox: router}
"""
APPS = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: apps}
spec: {driver: bridge, ipam: [{subnet: 10.72.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: app1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app1-apps}
spec: {network: apps, sandbox: app1, ports: [{hostPort: 8080, containerPort: 80}]}
"""
FORWARDING6 = Path("/proc/sys/net/ipv6/conf/all/forwarding")


def test_sets_side_by_side_get_sets_mermaid_and_host_lines(tmp_path: Path) -> None:
    infra = write_manifests(tmp_path / "infra", INFRA)
    apps = write_manifests(tmp_path / "apps", APPS)
    assert FORWARDING6.read_text().strip() == "0"  # a fresh namespace
    plan = cnm("plan", "-f", str(infra), "--set", "infra", check=True).stdout
    host = [line for line in plan.splitlines() if "Host/" in line]
    assert [line.split()[:5] for line in host] == [
        ["~", "Host/net.ipv4.ip_forward", "0", "->", "1"],
        ["~", "Host/net.ipv6.conf.all.forwarding", "0", "->", "1"]]
    steps = json.loads(cnm("plan", "-f", str(infra), "--set", "infra", "-o", "json",
                           check=True).stdout)["steps"]
    applied = cnm("apply", "-f", str(infra), "--set", "infra", "--yes", check=True)
    ran = [line.split("] ", 1)[1] for line in applied.stderr.splitlines()
           if line.startswith("[")]
    assert ran == steps  # every step apply ran was in the plan, in that order
    assert FORWARDING6.read_text().strip() == "1"
    assert cnm("apply", "-f", str(apps), "--set", "apps", "--yes").returncode == 0
    for name, manifests in (("infra", infra), ("apps", apps)):
        again = cnm("plan", "-f", str(manifests), "--set", name, check=True).stdout
        assert again.startswith("No changes."), again

    table = cnm("get", check=True).stdout.splitlines()
    assert table[0].split() == ["SET", "OBJECT", "KERNEL"]
    rows = [row.split()[:2] for row in table[1:]]
    assert rows == [["apps", "Network/apps"], ["apps", "Sandbox/app1"],
                    ["apps", "Endpoint/app1-apps"], ["apps", "Resolver/apps"],
                    ["infra", "Network/shared"], ["infra", "Sandbox/router"],
                    ["infra", "Endpoint/router-shared"], ["infra", "Resolver/infra"]]
    assert "br-apps" in links() and "br-shared" in links()  # what ip -j shows
    assert netns_names() == ["app1", "router"]
    only = cnm("get", "--set", "infra", "-o", "json", check=True).stdout
    assert {(r["set"], r["name"]) for r in json.loads(only)} == {
        ("infra", "shared"), ("infra", "router"), ("infra", "router-shared"),
        ("infra", "infra")}
    counts = cnm("get", "sets", check=True).stdout.splitlines()
    assert [line.split() for line in counts] == [
        ["SET", "NETWORKS", "SANDBOXES", "ENDPOINTS", "RESOLVERS", "OBJECTS"],
        ["apps", "1", "1", "1", "1", "4"], ["infra", "1", "1", "1", "1", "4"]]
    diagram = cnm("get", "-o", "mermaid", check=True).stdout
    assert diagram == cnm("get", "-o", "mermaid", check=True).stdout
    assert 'subgraph set_apps["apply set apps"]' in diagram
    assert "infra__s__router --- infra__e__router_shared" in diagram
    assert "infra__e__router_shared --- infra__n__shared" in diagram

    # the prune line: applying a part of a set says what else goes, changing nothing
    part = write_manifests(tmp_path / "part", INFRA.split("---\n")[0])
    before = kernel_dump()
    dry = cnm("apply", "-f", str(part), "--set", "infra", "--dry-run", check=True)
    assert dry.stdout.splitlines()[1] == ("3 of the 4 objects apply set 'infra' owns are not "
                                          "in these manifests: this apply deletes them.")
    assert_same_kernel(before, kernel_dump())

    for name, manifests in (("apps", apps), ("infra", infra)):
        cnm("delete", "-f", str(manifests), "--set", name, "--yes", check=True)
    assert cnm("get", "sets", check=True).stdout.splitlines() == [
        "SET  NETWORKS  SANDBOXES  ENDPOINTS  RESOLVERS  OBJECTS"]
    assert netns_names() == [] and list(links()) == ["lo"]


def test_a_saved_plan_applied_twice_says_already_applied(tmp_path: Path) -> None:
    apps = write_manifests(tmp_path / "apps", APPS)
    saved = tmp_path / "plan.json"
    cnm("plan", "-f", str(apps), "-out", str(saved), check=True)
    first = cnm("apply", str(saved))
    assert first.returncode == 0, first.stderr
    before = kernel_dump()
    second = cnm("apply", str(saved))
    assert second.returncode == 0, second.stderr
    assert "already applied" in second.stderr and "stale" not in second.stderr
    assert_same_kernel(before, kernel_dump())
    shown = cnm("show", str(saved), check=True).stdout
    assert "+ Endpoint/app1-apps" in shown
    assert cnm("plan", "-f", str(apps), check=True).stdout.startswith("No changes.")
    cnm("delete", "-f", str(apps), "--yes", check=True)
    assert netns_names() == [] and list(links()) == ["lo"]


def test_every_problem_in_one_run_and_nothing_changed(tmp_path: Path) -> None:
    apps = write_manifests(tmp_path / "apps", APPS)
    cnm("apply", "-f", str(apps), "--yes", check=True)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.yaml").write_text(APPS.replace("subnet: 10.72.0.0/24", "subnet: 10.72.0.0/33"))
    (bad / "b.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: app1-two}\n"
        "spec: {network: apps, sandbox: app1, ifname: eth0, gateway: false}\n"
        "---\napiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: app1-three}\n"
        "spec: {network: apps, sandbox: app1, ifname: eth0, gateway: false}\n")
    before = kernel_dump()
    refused = cnm("apply", "-f", str(bad), "--yes")
    assert refused.returncode == 1 and refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert any("a.yaml:4: Network/apps: spec.ipam.0.subnet" in line for line in lines), lines
    clash = [line for line in lines if "spec.ifname" in line]
    assert len(clash) == 1  # app1-apps has no ifname of its own (it gets the next free one)
    assert f"Endpoint/app1-three ({bad / 'b.yaml'}:9)" in clash[0], clash
    assert_same_kernel(before, kernel_dump())
    cnm("delete", "-f", str(apps), "--yes", check=True)
    assert netns_names() == [] and list(links()) == ["lo"]


def test_an_unknown_network_refuses_the_whole_apply(tmp_path: Path) -> None:
    """Another set's network may be joined (test_shared_network.py), but one no set owns
    is an error naming file, object and field, and nothing of the set is applied."""
    infra = write_manifests(tmp_path / "infra", INFRA)
    cnm("apply", "-f", str(infra), "--set", "infra", "--yes", check=True)
    guest = write_manifests(tmp_path / "guest", (
        "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: guest}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: guest-shared}\n"
        "spec: {network: shared, sandbox: guest}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: guest-typo}\n"
        "spec: {network: nowhere, sandbox: guest, ifname: eth1, gateway: false}\n"))
    before = kernel_dump()
    for command in (("plan",), ("apply", "--yes")):
        refused = cnm(*command[:1], "-f", str(guest), "--set", "apps", *command[1:])
        assert refused.returncode == 1 and refused.stdout == ""
        (typo,) = refused.stderr.splitlines()  # guest-shared may join infra's network
        assert typo.startswith(f"{guest}/m.yaml:13: Endpoint/guest-typo: spec.network: unknown "
                               "network")
        assert typo.endswith("nor does any apply set own one in the kernel")
    assert_same_kernel(before, kernel_dump())
    cnm("delete", "-f", str(infra), "--set", "infra", "--yes", check=True)
    assert netns_names() == [] and list(links()) == ["lo"]

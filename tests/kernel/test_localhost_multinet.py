"""Issue 14 (Docker parity) against the real kernel: published ports on the host's
127.0.0.1, and sandboxes on several networks without hand-written fields.

Every verdict comes from real TCP connections, `ip -j`, `nft -j` and /proc, never
from cnm's own reading; each test applies through the CLI, re-plans (empty) and
tears down (nothing left).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from test_firewall import HOST, apply, blocked, build_outside, connect, nft_json, serving

from helpers import assert_same_kernel, cnm, ip_json, kernel_dump, netns_names, write_manifests

PORTS_WORLD = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec: {ipam: [{subnet: 10.89.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: back}
spec: {ipam: [{subnet: 10.90.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: other}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web}
spec:
  network: front
  sandbox: web
  ipv4Address: 10.89.0.10
  ports:
    - {containerPort: 80, hostPort: 8080}
    - {containerPort: 81, hostPort: 8081, hostIP: 127.0.0.1}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: other}
spec: {network: back, sandbox: other, ipv4Address: 10.90.0.10}
"""

LOCALNET = Path("/proc/sys/net/ipv4/conf/br-front/route_localnet")


def _localhost_rules() -> list[dict[str, Any]]:
    rules = [o["rule"] for o in nft_json("list", "table", "inet", "cnm") if "rule" in o]
    return [r for r in rules if str(r.get("comment", "")).endswith("Network/front localhost")]


def _teardown_leaves_nothing(manifests: Path) -> None:
    result = cnm("delete", "-f", str(manifests), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    tables = [o for o in nft_json("list", "tables") if "table" in o]
    assert tables == []
    assert netns_names() == [n for n in netns_names() if n == "outside"]
    leftovers = [link["ifname"] for link in ip_json("link", "show")
                 if link["ifname"].startswith(("br-", "cnm"))]
    assert leftovers == []


def test_published_ports_answer_on_the_host_loopback(tmp_path: Path) -> None:
    build_outside()
    manifests = write_manifests(tmp_path / "m", PORTS_WORLD)
    apply(manifests)
    assert LOCALNET.read_text() == "1\n"
    assert len(_localhost_rules()) == 3
    with serving("web", "10.89.0.10", 80, name="web"):
        # the host's loopback reaches the sandbox; it answers the bridge's address
        assert connect(None, "127.0.0.1", 8080) == "web 10.89.0.1"
        assert connect(None, "127.0.0.2", 8080) == "web 10.89.0.1"
        assert connect("outside", HOST, 8080) is not None  # published on every address
        # the kernel never routes ::1 out of the host: no IPv6 loopback (docs/firewall.md)
        assert blocked(None, "::1", 8080)
    with serving("web", "10.89.0.10", 81, name="local"):
        # hostIP 127.0.0.1: the host's loopback only
        assert connect(None, "127.0.0.1", 8081) == "local 10.89.0.1"
        assert blocked("outside", HOST, 8081)
        assert blocked(None, HOST, 8081)
        assert blocked("other", "10.90.0.1", 8081)
    with serving(None, "127.0.0.1", 9999, name="host"):
        # a host service on loopback that is not a published port is left alone
        assert connect(None, "127.0.0.1", 9999) == "host 127.0.0.1"
        assert blocked("web", "10.89.0.1", 9999)

    # drift: a rule deleted by hand and the switch turned off by hand are shown, repaired
    handle = _localhost_rules()[0]["handle"]
    subprocess.run(["nft", "delete", "rule", "inet", "cnm", _localhost_rules()[0]["chain"],
                    "handle", str(handle)], check=True)
    LOCALNET.write_text("0\n")
    plan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "localhost: (rules differ) -> true" in plan.stdout
    assert "route_localnet: false -> true" in plan.stdout
    apply(manifests)
    assert LOCALNET.read_text() == "1\n" and len(_localhost_rules()) == 3
    with serving("web", "10.89.0.10", 80, name="web"):
        assert connect(None, "127.0.0.1", 8080) == "web 10.89.0.1"
    _teardown_leaves_nothing(manifests)


MULTI = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec: {ipam: [{subnet: 10.89.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: back}
spec: {ipam: [{subnet: 10.90.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: vault}
spec: {internal: true, ipam: [{subnet: 10.91.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: app}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: db}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app-front}
spec: {network: front, sandbox: app, ipv4Address: 10.89.0.10FRONT_EXTRA}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: db}
spec: {network: vault, sandbox: db, ipv4Address: 10.91.0.20}
"""
MORE = """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app-back}
spec: {network: back, sandbox: app, ipv4Address: 10.90.0.10}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app-vault}
spec: {network: vault, sandbox: app, ipv4Address: 10.91.0.10}
"""


def _interfaces(netns: str) -> dict[str, list[str]]:
    """ifname -> its IPv4 addresses, as `ip -j` shows them."""
    return {entry["ifname"]: [a["local"] for a in entry["addr_info"] if a["family"] == "inet"]
            for entry in ip_json("addr", "show", netns=netns) if entry["ifname"] != "lo"}


def _default_routes(netns: str) -> list[tuple[str, str]]:
    return sorted((r["gateway"], r["dev"]) for r in ip_json("route", "show", "default",
                                                            netns=netns))


def test_second_network_gets_eth1_and_the_default_route_by_gw_priority(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "m", MULTI.replace("FRONT_EXTRA", ""))
    apply(manifests)
    assert _interfaces("app") == {"eth0": ["10.89.0.10"]}
    assert _default_routes("app") == [("10.89.0.1", "eth0")]
    assert _default_routes("db") == []  # an internal network gives no default route

    # two more endpoints, no hand-written fields: app-front keeps eth0 although
    # app-back sorts before it; the default route goes to app-back (name order)
    write_manifests(tmp_path / "m", MULTI.replace("FRONT_EXTRA", "") + MORE)
    apply(manifests)
    assert _interfaces("app") == {"eth0": ["10.89.0.10"], "eth1": ["10.90.0.10"],
                                  "eth2": ["10.91.0.10"]}
    assert _default_routes("app") == [("10.90.0.1", "eth1")]

    # gwPriority moves it back, renaming nothing
    write_manifests(tmp_path / "m", MULTI.replace("FRONT_EXTRA", ", gwPriority: 10") + MORE)
    apply(manifests)
    assert _interfaces("app") == {"eth0": ["10.89.0.10"], "eth1": ["10.90.0.10"],
                                  "eth2": ["10.91.0.10"]}
    assert _default_routes("app") == [("10.89.0.1", "eth0")]

    # removing an endpoint renames none of the others
    write_manifests(tmp_path / "m", MULTI.replace("FRONT_EXTRA", ", gwPriority: 10")
                    + MORE.split("---\n")[0] + "---\n" + MORE.split("---\n")[2])
    apply(manifests)
    assert _interfaces("app") == {"eth0": ["10.89.0.10"], "eth2": ["10.91.0.10"]}

    _teardown_leaves_nothing(manifests)


def test_an_extra_default_route_via_the_same_link_is_removed(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "m", MULTI.replace("FRONT_EXTRA", ""))
    apply(manifests)
    subprocess.run(["ip", "-n", "app", "route", "append", "default", "via", "10.89.0.99",
                    "dev", "eth0", "metric", "50"], check=True)
    assert len(_default_routes("app")) == 2
    plan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
    assert plan.returncode == 2 and "gateway4" in plan.stdout, plan.stdout + plan.stderr
    apply(manifests)  # verification passes and the re-plan is empty
    assert _default_routes("app") == [("10.89.0.1", "eth0")]
    _teardown_leaves_nothing(manifests)


def test_gateway_true_on_an_internal_network_changes_nothing(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "m", MULTI.replace("FRONT_EXTRA", ""))
    apply(manifests)
    before = kernel_dump()
    bad = MULTI.replace("FRONT_EXTRA", "").replace(
        "ipv4Address: 10.91.0.20}", "ipv4Address: 10.91.0.20, gateway: true}")
    write_manifests(tmp_path / "m", bad)
    result = cnm("apply", "-f", str(manifests), "--yes")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Endpoint/db: spec.gateway: Network/vault is internal" in lines[0]
    assert_same_kernel(before, kernel_dump())
    write_manifests(tmp_path / "m", MULTI.replace("FRONT_EXTRA", ""))
    _teardown_leaves_nothing(manifests)

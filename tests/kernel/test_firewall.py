"""Issue 3 against the real kernel: published ports, masquerade, isolation, icc, drift.

Each test runs in its own fresh net + mount namespace (tests/isolation.py),
which plays the host. Inside it, a small world: an "outside" host in its own
named namespace behind an uplink veth (203.0.113.0/24, TEST-NET-3; the host
has .1 and .3, outside is .2 and has no route to any sandbox subnet), and
cnm's networks and sandboxes. Every verdict comes from real TCP/UDP traffic
and from `nft`/`ip` run independently of cnm's own code.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers import REPO, cnm, ip_json, links, write_manifests

HOST, HOST_2, OUTSIDE = "203.0.113.1", "203.0.113.3", "203.0.113.2"

_SERVER = """
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
if sys.argv[3] == 'udp':
    srv = socket.socket(family, socket.SOCK_DGRAM)
    srv.bind((sys.argv[1], int(sys.argv[2])))
    print('ready', flush=True)
    while True:
        data, peer = srv.recvfrom(200)
        print(data.decode(), peer[0], flush=True)
srv = socket.create_server((sys.argv[1], int(sys.argv[2])), family=family)
print('ready', flush=True)
while True:
    conn, peer = srv.accept()
    conn.sendall(sys.argv[4].encode() + b' ' + peer[0].encode())
    conn.close()
"""
_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as c:
    sys.stdout.write(c.recv(200).decode())
"""
_UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[3])))
s.sendto(sys.argv[4].encode(), (sys.argv[1], int(sys.argv[2])))
"""


def _in(netns: str | None, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


@contextmanager
def serving(netns: str | None, address: str, port: int, *, name: str = "pong",
            proto: str = "tcp") -> Iterator[subprocess.Popen[str]]:
    """A server in `netns` (None: the host) answering `<name> <peer address>` to each client."""
    server = subprocess.Popen(
        _in(netns, sys.executable, "-c", _SERVER, address, str(port), proto, name),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready", server.stderr
        yield server
    finally:
        server.kill()
        server.wait()


def connect(netns: str | None, address: str, port: int, timeout: float = 3.0) -> str | None:
    """The server's reply to a TCP connection from `netns`, or None if none came."""
    client = subprocess.run(
        _in(netns, sys.executable, "-c", _CLIENT, address, str(port), str(timeout)),
        capture_output=True, text=True, timeout=timeout + 10,
    )
    return client.stdout if client.returncode == 0 else None


def blocked(netns: str | None, address: str, port: int) -> bool:
    return connect(netns, address, port, timeout=1.0) is None


def read_line(process: subprocess.Popen[str], timeout: float = 5.0) -> str | None:
    """The next line a server prints, or None if it prints nothing within `timeout`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().strip() if ready else None


def send_udp(netns: str, address: str, port: int, source_port: int, payload: str) -> None:
    subprocess.run(
        _in(netns, sys.executable, "-c", _UDP_CLIENT, address, str(port), str(source_port),
            payload),
        check=True, capture_output=True, timeout=10,
    )


def build_outside() -> None:
    """The uplink: host 203.0.113.1 and .3 on up0, the outside host .2 in netns `outside`."""
    run = [
        "ip netns add outside",
        "ip link add up0 type veth peer name eth0 netns outside",
        f"ip addr add {HOST}/24 dev up0",
        f"ip addr add {HOST_2}/24 dev up0",
        "ip link set up0 up",
        f"ip -n outside addr add {OUTSIDE}/24 dev eth0",
        "ip -n outside link set eth0 up",
        "ip -n outside link set lo up",
    ]
    for command in run:
        subprocess.run(command.split(), check=True)


WORLD = """\
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
metadata: {name: secret}
spec: {internal: true, ipam: [{subnet: 10.91.0.0/24}]}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: quiet}
spec: {icc: false, ipam: [{subnet: 10.92.0.0/24}]}
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
kind: Sandbox
metadata: {name: db}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: vault}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: q1}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: q2}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web}
spec:
  network: front
  sandbox: web
  ipv4Address: 10.89.0.10
  ports: WEB_PORTS
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web2}
spec:
  network: front
  sandbox: web2
  ipv4Address: 10.89.0.20
  ports: WEB2_PORTS
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: db}
spec: {network: back, sandbox: db, ipv4Address: 10.90.0.10}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: vault}
spec: {network: secret, sandbox: vault, ipv4Address: 10.91.0.10}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: q1}
spec: {network: quiet, sandbox: q1, ipv4Address: 10.92.0.10}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: q2}
spec: {network: quiet, sandbox: q2, ipv4Address: 10.92.0.20}
"""
PORTS = ("[{containerPort: 80, hostPort: 8080}, "
         f"{{containerPort: 90, hostPort: 9090, hostIP: {HOST}}}]")


def world(directory: Path, web: str = PORTS, web2: str = "[]") -> Path:
    return write_manifests(directory, WORLD.replace("WEB_PORTS", web).replace("WEB2_PORTS", web2))


def apply(directory: Path) -> str:
    """Apply; the re-plan right after must be empty (always)."""
    result = cnm("apply", "-f", str(directory), "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    replan = cnm("plan", "-f", str(directory), "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout + replan.stderr
    return result.stderr


def nft_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(["nft", "-j", *args], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout)["nftables"])


def nft_tables() -> list[tuple[str, str]]:
    return sorted((str(o["table"]["family"]), str(o["table"]["name"]))  # type: ignore[index]
                  for o in nft_json("list", "tables") if "table" in o)


def test_published_ports_hairpin_host_ip_and_masquerade(tmp_path: Path) -> None:
    build_outside()
    manifests = world(tmp_path / "m")
    plan = cnm("plan", "-f", str(manifests), "-o", "json")
    front = next(a for a in json.loads(plan.stdout)["actions"] if a["name"] == "front")
    assert {"path": "forwarding.ipv4", "old": None, "new": True} in front["changes"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == "0\n"
    apply(manifests)
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == "1\n"
    assert nft_tables() == [("bridge", "cnm"), ("inet", "cnm")]

    with serving("web", "10.89.0.10", 80, name="web"):
        # outside -> host:port reaches the sandbox, with the client's own address
        assert connect("outside", HOST, 8080) == f"web {OUTSIDE}"
        assert connect("outside", HOST_2, 8080) == f"web {OUTSIDE}"
        # the host -> its own address:port
        assert connect(None, HOST, 8080) == f"web {HOST}"
        # hairpin: a sandbox -> a published port of the host (back into its own network)
        assert connect("web2", HOST, 8080) == "web 10.89.0.1"
        assert connect("web", "10.89.0.1", 8080) == "web 10.89.0.1"
        # another network reaches the published port too (through the host)
        assert connect("db", HOST, 8080) is not None
    with serving("web", "10.89.0.10", 90, name="bound"):
        # hostIP: answers on that address only
        assert connect("outside", HOST, 9090) == f"bound {OUTSIDE}"
        assert blocked("outside", HOST_2, 9090)
    # masquerade: the outside sees the host's address, and has no route back otherwise
    assert ip_json("route", "show", "10.89.0.0/24", netns="outside") == []
    with serving("outside", OUTSIDE, 7000, name="outside"):
        assert connect("web", OUTSIDE, 7000) == f"outside {HOST}"
        assert connect("q1", OUTSIDE, 7000) == f"outside {HOST}"
        assert blocked("vault", OUTSIDE, 7000)  # internal: nothing leaves


def test_isolation_internal_and_icc(tmp_path: Path) -> None:
    build_outside()
    apply(world(tmp_path / "m"))
    with serving("db", "10.90.0.10", 5000, name="db"), \
            serving("web", "10.89.0.10", 5000, name="web"):
        assert connect(None, "10.90.0.10", 5000) == "db 10.90.0.1"  # the host reaches both
        assert blocked("web", "10.90.0.10", 5000)  # cross-network: dropped, both ways
        assert blocked("db", "10.89.0.10", 5000)
        assert blocked("vault", "10.89.0.10", 5000)
        assert blocked("outside", "10.89.0.10", 5000)  # no routed way in, even with a route
    subprocess.run(["ip", "-n", "outside", "route", "add", "10.0.0.0/8", "via", HOST], check=True)
    with serving("web", "10.89.0.10", 5000, name="web"):
        assert blocked("outside", "10.89.0.10", 5000)
    with serving("vault", "10.91.0.10", 5000, name="vault"):
        assert connect(None, "10.91.0.10", 5000) == "vault 10.91.0.1"
        assert blocked("web", "10.91.0.10", 5000)
        assert blocked("outside", "10.91.0.10", 5000)
    with serving(None, "10.91.0.1", 6000, name="gw"):
        assert connect("vault", "10.91.0.1", 6000) == "gw 10.91.0.10"  # its gateway: yes
    # icc off: same network dropped; the gateway and the outside still reachable
    with serving("q2", "10.92.0.20", 5000, name="q2"):
        assert blocked("q1", "10.92.0.20", 5000)
        assert connect(None, "10.92.0.20", 5000) == "q2 10.92.0.1"
    with serving(None, "10.92.0.1", 6000, name="gw"):
        assert connect("q1", "10.92.0.1", 6000) == "gw 10.92.0.10"
    with serving("outside", OUTSIDE, 7000, name="outside"):
        assert connect("q1", OUTSIDE, 7000) == f"outside {HOST}"
    # icc on (front): same network allowed
    with serving("web2", "10.89.0.20", 5000, name="web2"):
        assert connect("web", "10.89.0.20", 5000) == "web2 10.89.0.10"


def test_removing_a_port_is_an_in_place_update(tmp_path: Path) -> None:
    build_outside()
    manifests = world(tmp_path / "m")
    apply(manifests)
    get = json.loads(cnm("get", "endpoints", "-o", "json", check=True).stdout)
    veth = next(r["attrs"]["veth"] for r in get if r["name"] == "web")
    host_index, peer_index = links()[veth]["ifindex"], links("web")["eth0"]["ifindex"]
    with serving("web", "10.89.0.10", 80):
        assert connect("outside", HOST, 8080) is not None

    world(manifests, web=f"[{{containerPort: 90, hostPort: 9090, hostIP: {HOST}}}]")
    plan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
    assert plan.returncode == 2
    assert "Plan: 0 to create, 1 to update, 0 to delete." in plan.stdout
    assert ("~ Endpoint/web  ports: [8080->80/tcp, 203.0.113.1:9090->90/tcp] -> "
            "[203.0.113.1:9090->90/tcp]") in plan.stdout
    assert "-/+" not in plan.stdout
    applied = apply(manifests)
    assert "update Firewall/default" in applied and "1 rules removed, 0 added" in applied
    assert links()[veth]["ifindex"] == host_index
    assert links("web")["eth0"]["ifindex"] == peer_index
    with serving("web", "10.89.0.10", 80):
        assert blocked("outside", HOST, 8080)
    with serving("web", "10.89.0.10", 90):
        assert connect("outside", HOST, 9090) is not None


def test_moving_a_udp_port_flushes_its_stale_conntrack_entries(tmp_path: Path) -> None:
    build_outside()
    udp = "[{containerPort: 53, hostPort: 5353, protocol: udp}]"
    manifests = world(tmp_path / "m", web=udp)
    apply(manifests)
    with serving("web", "10.89.0.10", 53, proto="udp") as web, \
            serving("web2", "10.89.0.20", 53, proto="udp") as web2:
        send_udp("outside", HOST, 5353, 40000, "one")
        assert read_line(web) == f"one {OUTSIDE}"
        # the same client flow (same source port) has a conntrack entry that says "to
        # web"; move the port to web2: apply flushes it, so the next datagram follows
        world(manifests, web="[]", web2=udp)
        apply(manifests)
        send_udp("outside", HOST, 5353, 40000, "two")
        assert read_line(web2) == f"two {OUTSIDE}"
        assert read_line(web, timeout=0.5) is None


def test_table_deleted_by_hand_is_shown_and_repaired(tmp_path: Path) -> None:
    build_outside()
    manifests = world(tmp_path / "m")
    apply(manifests)
    subprocess.run(["nft", "delete", "table", "inet", "cnm"], check=True)
    with serving("web", "10.89.0.10", 80):
        assert blocked("outside", HOST, 8080)
    plan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "~ Endpoint/web" in plan.stdout
    assert "ports: [] -> [8080->80/tcp, 203.0.113.1:9090->90/tcp]" in plan.stdout
    assert "masquerade: false -> true" in plan.stdout
    assert "internal: (no rules) -> false" in plan.stdout
    assert "-/+" not in plan.stdout and "  + " not in plan.stdout
    apply(manifests)
    with serving("web", "10.89.0.10", 80):
        assert connect("outside", HOST, 8080) == f"pong {OUTSIDE}"

    # one rule changed by hand: shown under its owner, rewritten
    rules = [o["rule"] for o in nft_json("list", "chain", "inet", "cnm", "ports") if "rule" in o]
    dnat = next(r for r in rules if "8080" in str(r["comment"]))  # type: ignore[index]
    subprocess.run(["nft", "delete", "rule", "inet", "cnm", "ports", "handle",
                    str(dnat["handle"])], check=True)  # type: ignore[index]
    subprocess.run(["nft", "add", "rule", "inet", "cnm", "ports", "tcp", "dport", "8080",
                    "dnat", "ip", "to", "10.89.0.20:80", "comment", f"\"{dnat['comment']}\""],
                   check=True)  # type: ignore[index]
    plan = cnm("plan", "-f", str(manifests))
    assert "8080->80/tcp (rules differ)" in plan.stdout
    apply(manifests)


def test_foreign_tables_survive_apply_and_delete(tmp_path: Path) -> None:
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        "table inet filter {\n"
        "  chain input { type filter hook input priority 0; policy accept;\n"
        "    tcp dport 2222 accept comment \"mine\"\n"
        "  }\n"
        "}\n"
        "table ip nat {\n"
        "  chain postrouting { type nat hook postrouting priority 100; policy accept;\n"
        "    ip saddr 192.168.77.0/24 masquerade\n"
        "  }\n"
        "}\n"
    ))

    def foreign() -> object:
        return [o for o in nft_json("list", "ruleset")
                if any(v.get("table", v.get("name")) in ("filter", "nat")
                       for v in o.values() if isinstance(v, dict))]

    before = foreign()
    assert before
    manifests = world(tmp_path / "m")
    apply(manifests)
    assert foreign() == before
    assert nft_tables() == [("bridge", "cnm"), ("inet", "cnm"), ("inet", "filter"), ("ip", "nat")]
    deleted = cnm("delete", "-f", str(manifests), "--yes")
    assert deleted.returncode == 0, deleted.stderr
    # rules go first, then the links they name
    lines = [line for line in deleted.stderr.splitlines() if line.startswith("[")]
    assert "update Firewall/default" in lines[0] and "delete" in lines[1]
    assert foreign() == before
    assert nft_tables() == [("inet", "filter"), ("ip", "nat")]

    # a table called cnm that cnm did not make is a plan-time conflict, and is left alone
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        "table inet cnm {\n  chain c { type filter hook input priority 0; accept\n  }\n}\n"))
    result = cnm("plan", "-f", str(manifests))
    assert result.returncode == 1
    assert "nft table inet cnm is taken by nftables table inet cnm (not owned by cnm)" \
        in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_plan_and_observe_never_write(tmp_path: Path) -> None:
    build_outside()
    manifests = world(tmp_path / "m")
    apply(manifests)
    world(manifests, web="[]")

    def snapshot() -> object:
        return (nft_json("list", "ruleset"), Path("/proc/sys/net/ipv4/ip_forward").read_text())

    before = snapshot()
    assert cnm("plan", "-f", str(manifests)).returncode == 0
    assert cnm("apply", "-f", str(manifests), "--dry-run").returncode == 0
    assert cnm("observe", "-o", "json").returncode == 0
    assert snapshot() == before


SIX = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: six}
spec: {ipam: [{subnet: 10.93.0.0/24}, {subnet: "fd00:93::/64"}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: v6}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: v6}
spec:
  network: six
  sandbox: v6
  ipv6Address: "fd00:93::10"
  ports: [{containerPort: 80, hostPort: 8080}]
"""


def test_ipv6_published_port_masquerade_and_forwarding(tmp_path: Path) -> None:
    build_outside()
    for command in ("ip addr add 2001:db8:1::1/64 dev up0 nodad",
                    "ip -n outside addr add 2001:db8:1::2/64 dev eth0 nodad"):
        subprocess.run(command.split(), check=True)
    assert Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text() == "0\n"
    apply(write_manifests(tmp_path / "m", SIX))
    assert Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text() == "1\n"
    with serving("v6", "fd00:93::10", 80, name="v6"):
        assert connect("outside", "2001:db8:1::1", 8080) == "v6 2001:db8:1::2"
        assert connect(None, "2001:db8:1::1", 8080) == "v6 2001:db8:1::1"
        assert connect("v6", "fd00:93::1", 8080) == "v6 fd00:93::1"  # to itself, hairpin
    with serving("outside", "2001:db8:1::2", 7000, name="outside"):
        assert connect("v6", "2001:db8:1::2", 7000) == "outside 2001:db8:1::1"


def test_traffic_that_is_not_cnms_passes_untouched(tmp_path: Path) -> None:
    """cnm's base chains see every packet of the host; they must only act on cnm's own."""
    build_outside()
    commands = [
        "ip link add br-x type bridge", "ip addr add 10.77.0.1/24 dev br-x",
        "ip link set br-x up",
        f"ip -n outside route add 10.77.0.0/24 via {HOST}",
    ]
    for name, address in (("fa", "10.77.0.2"), ("fb", "10.77.0.3")):
        commands += [
            f"ip netns add {name}", f"ip -n {name} link set lo up",
            f"ip link add {name}0 type veth peer name eth0 netns {name}",
            f"ip link set {name}0 master br-x", f"ip link set {name}0 up",
            f"ip -n {name} addr add {address}/24 dev eth0", f"ip -n {name} link set eth0 up",
            f"ip -n {name} route add default via 10.77.0.1",
        ]
    for command in commands:
        subprocess.run(command.split(), check=True)
    apply(world(tmp_path / "m"))  # every kind of cnm rule, icc off included (forwarding on)
    with serving("fb", "10.77.0.3", 8080, name="fb"):
        assert connect("fa", "10.77.0.3", 8080) == "fb 10.77.0.2"  # bridged, same bridge
        assert connect("outside", "10.77.0.3", 8080) == f"fb {OUTSIDE}"  # routed in
    with serving("outside", OUTSIDE, 7000, name="outside"):
        assert connect("fa", OUTSIDE, 7000) == "outside 10.77.0.2"  # routed out, not NATed


def test_without_nft_only_bridge_networks_need_it(tmp_path: Path) -> None:
    env = {**os.environ, "CNM_NFT": "nft-is-not-installed"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)

    alone = write_manifests(tmp_path / "alone", "apiVersion: cnm/v1\nkind: Sandbox\n"
                                                "metadata: {name: solo}\n")
    assert run("apply", "-f", str(alone), "--yes").returncode == 0
    assert run("plan", "-f", str(alone), "--detailed-exitcode").returncode == 0
    result = run("apply", "-f", str(world(tmp_path / "m")), "--yes")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "cnm: apply failed at step [1/20] update Firewall/default: the `nft` command (Debian "
        "package nftables) is needed for cnm's firewall rules; install it (apt-get install "
        "nftables); rolled back: nothing had changed yet")
    assert not [name for name in links() if name.startswith("br-")]  # the firewall step is first


def _one_published_port(tmp_path: Path, subnet: str, host_port: int) -> Path:
    """Manifests of network `web`, sandbox s1 and endpoint e1 publishing `host_port`."""
    directory = tmp_path / "m"
    write_manifests(directory, f"""\
apiVersion: cnm/v1
kind: Network
metadata: {{name: web}}
spec: {{ipam: [{{subnet: {subnet}}}]}}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {{name: s1}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: e1}}
spec: {{network: web, sandbox: s1, ports: [{{containerPort: 80, hostPort: {host_port}}}]}}
""")
    return directory


def test_hairpin_drift_is_shown_and_repaired_port_by_port(tmp_path: Path) -> None:
    """Hairpin mode on an endpoint's bridge port: set as desired, a change by hand shows
    in the plan and is put back; read independently with `bridge -d link`."""
    from reconciler.kernel import brport

    directory = _one_published_port(tmp_path, "10.95.0.0/24", 8095)
    assert cnm("apply", "-f", str(directory), "--yes").returncode == 0
    veth = next(name for name, link in links().items() if link.get("master") == "br-web")

    def hairpin() -> bool:
        shown = json.loads(subprocess.run(["bridge", "-j", "-d", "link", "show", "dev", veth],
                                          capture_output=True, text=True, check=True).stdout)
        return bool(shown[0]["hairpin"])

    assert hairpin() and brport.hairpin_of(links()[veth]["ifindex"]) is True
    subprocess.run(["bridge", "link", "set", "dev", veth, "hairpin", "off"], check=True)
    assert not hairpin() and brport.hairpin_of(links()[veth]["ifindex"]) is False
    plan = cnm("plan", "-f", str(directory))
    assert "~ Endpoint/e1  hairpin: false -> true" in plan.stdout, plan.stdout
    assert cnm("apply", "-f", str(directory), "--yes").returncode == 0
    assert hairpin()
    assert cnm("plan", "-f", str(directory)).stdout.startswith("No changes.")
    assert brport.hairpin_of(links()["lo"]["ifindex"]) is None  # not a bridge port


def test_libnftables_in_process_and_the_nft_command_agree(tmp_path: Path) -> None:
    """cnm talks to nftables in-process (libnftables) when it can; the `nft` command
    path (CNM_NFT) must read back the very same ruleset from what the library wrote."""
    from reconciler.kernel import nft

    directory = _one_published_port(tmp_path, "10.96.0.0/24", 8096)
    assert nft._library() is not None, "libnftables.so.1 comes with the nftables package"
    assert cnm("apply", "-f", str(directory), "--yes").returncode == 0
    in_process = nft.read_ruleset()
    os.environ["CNM_NFT"] = "nft"
    try:
        assert nft._library() is None
        by_command = nft.read_ruleset()
    finally:
        del os.environ["CNM_NFT"]
    assert in_process == by_command and "8096" in str(by_command)
    listed = subprocess.run(["nft", "-j", "list", "table", "inet", "cnm"], capture_output=True,
                            text=True, check=True).stdout
    assert "8096" in listed

"""cnm's resolver on the real kernel: names asked with glibc (`getent`, Python's
`getaddrinfo`) from inside sandboxes (`ip netns exec`), an upstream DNS server in a
namespace of its own, the resolver killed and repaired, files rewritten in place.

Each test runs in fresh namespaces (tests/conftest.py), where cnm starts the
resolver itself; the host's resolvers are the test's own /etc/resolv.conf,
bind-mounted inside the test's mount namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import cnm, links

HERE = Path(__file__).resolve().parent
RUN = Path("/run/cnm/resolver/default")

NETWORKS = """
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec:
  ipam: [{subnet: 10.89.0.0/24}, {subnet: "fd00:89::/64"}]
---
apiVersion: cnm/v1
kind: Network
metadata: {name: back}
spec:
  ipam: [{subnet: 10.90.0.0/24}]
"""
SANDBOXES = """
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web1}
spec:
  hostname: h-web1
  domainname: example.org
  dns: {servers: [192.0.2.53]}
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
metadata: {name: app}
"""
ENDPOINTS = """
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web1-front}
spec: {network: front, sandbox: web1, ipv4Address: 10.89.0.10, aliases: [www]}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web2-front}
spec: {network: front, sandbox: web2}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: db-back}
spec: {network: back, sandbox: db, ipv4Address: 10.90.0.20, aliases: [database]}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app-front}
spec: {network: front, sandbox: app}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app-back}
spec: {network: back, sandbox: app, ifname: eth1, gateway: false}
"""
PEER = """
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: late}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: late-front}
spec: {network: front, sandbox: late, ipv4Address: 10.89.0.99, aliases: [newcomer]}
"""


def _write(directory: Path, *, peer: bool = False) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "networks.yaml").write_text(NETWORKS)
    (directory / "sandboxes.yaml").write_text(SANDBOXES)
    (directory / "endpoints.yaml").write_text(ENDPOINTS)
    if peer:
        (directory / "peer.yaml").write_text(PEER)
    elif (directory / "peer.yaml").exists():
        (directory / "peer.yaml").unlink()
    return directory


def _host_resolvers(tmp_path: Path, *servers: str) -> None:
    """The host's resolvers, as this test's mount namespace sees /etc/resolv.conf."""
    conf = tmp_path / "host-resolv.conf"
    conf.write_text("".join(f"nameserver {s}\n" for s in servers))
    subprocess.run(["mount", "--bind", str(conf), "/etc/resolv.conf"], check=True)


def _upstream() -> subprocess.Popen[str]:
    """A DNS server in namespace `dnsup`, at 192.0.2.53 and 192.0.2.54 (see dnsupstream.py)."""
    for command in (
        "ip netns add dnsup",
        "ip link add vup type veth peer name vup-in netns dnsup",
        "ip addr add 192.0.2.1/24 dev vup", "ip link set vup up",
        "ip -n dnsup addr add 192.0.2.53/24 dev vup-in",
        "ip -n dnsup addr add 192.0.2.54/24 dev vup-in",
        "ip -n dnsup link set vup-in up", "ip -n dnsup link set lo up",
    ):
        subprocess.run(command.split(), check=True)
    server = subprocess.Popen(
        ["ip", "netns", "exec", "dnsup", sys.executable, str(HERE / "dnsupstream.py"),
         "192.0.2.53", "192.0.2.54"], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server


def _getent(sandbox: str, *args: str) -> tuple[set[str], float]:
    """Addresses `getent` finds inside `sandbox`, and how long it took."""
    start = time.monotonic()
    done = subprocess.run(["ip", "netns", "exec", sandbox, "getent", *args],
                          capture_output=True, text=True, timeout=20)
    elapsed = time.monotonic() - start
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}, elapsed


def _v4(sandbox: str, name: str) -> set[str]:
    return _getent(sandbox, "ahostsv4", name)[0]


def _v6(sandbox: str, name: str) -> set[str]:
    return _getent(sandbox, "ahostsv6", name)[0]


def _address(sandbox: str, ifname: str = "eth0", family: str = "-4") -> str:
    out = subprocess.run(["ip", "-n", sandbox, "-j", family, "addr", "show", "dev", ifname],
                         capture_output=True, text=True, check=True).stdout
    import json

    return str(next(a["local"] for a in json.loads(out)[0]["addr_info"]
                    if a.get("scope") == "global"))


def _bridge_macs() -> dict[str, str]:
    return {name: link["address"] for name, link in links().items()
            if link.get("linkinfo", {}).get("info_kind") == "bridge"}


def _resolver_pid() -> int:
    return int((RUN / "pid").read_text())


def test_every_kind_of_name_resolves_on_shared_networks_only(tmp_path: Path) -> None:
    _host_resolvers(tmp_path, "192.0.2.54")
    upstream = _upstream()
    try:
        manifests = _write(tmp_path / "m")
        applied = cnm("apply", "-f", str(manifests), "--yes")
        assert applied.returncode == 0, applied.stderr
        assert "Resolver/default" in applied.stderr
        web1_v6 = _address("web1", family="-6")
        for name in ("web1", "h-web1", "h-web1.example.org", "web1-front", "www", "WWW"):
            assert _v4("web2", name) == {"10.89.0.10"}, name
            assert _v6("web2", name) == {web1_v6}, name
        # app is on both networks: both sides resolve it by the address on the shared one
        assert _v4("web2", "app") == {_address("app")}
        assert _v4("db", "app") == {_address("app", "eth1")}
        assert _v4("app", "database") == {"10.90.0.20"} and _v4("app", "www") == {"10.89.0.10"}
        # nothing of a network the sandbox is not on, and the answer is fast
        for sandbox, name in (("web2", "db"), ("web2", "database"), ("db", "web1"),
                              ("db", "www")):
            found, elapsed = _getent(sandbox, "hosts", name)
            assert found == set() and elapsed < 1.0, (sandbox, name, found, elapsed)
        resolv = Path("/etc/netns/web2/resolv.conf").read_text()
        assert "nameserver 10.89.0.1\n" in resolv
        assert "10.89.0.10" not in Path("/etc/netns/web2/hosts").read_text()  # no peers

        # other names go upstream: web1's dns.servers, else the host's resolvers
        assert _v4("web1", "ext.test") == {"198.51.100.53"}
        assert _v4("web2", "ext.test") == {"198.51.100.54"}
        found, elapsed = _getent("web2", "hosts", "nosuch.test")
        assert found == set() and elapsed < 1.0
        probe = ("import socket, time, sys\nstart = time.monotonic()\n"
                 "try:\n    socket.getaddrinfo(sys.argv[1], 80)\n    print('found')\n"
                 "except socket.gaierror:\n    print('failed', time.monotonic() - start)\n")
        for name in ("nosuch", "nosuch.test"):
            out = subprocess.run(["ip", "netns", "exec", "web2", sys.executable, "-c", probe,
                                  name], capture_output=True, text=True, timeout=20).stdout
            assert out.startswith("failed") and float(out.split()[1]) < 1.0, out

        assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0
        deleted = cnm("delete", "-f", str(manifests), "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert not RUN.exists()
        assert subprocess.run(["ss", "-Hlun", "sport = :53"], capture_output=True,
                              text=True).stdout.strip() == ""
    finally:
        upstream.kill()
        upstream.wait()


def test_without_any_upstream_an_unknown_name_fails_at_once(tmp_path: Path) -> None:
    _host_resolvers(tmp_path)  # the host has no resolver at all
    manifests = _write(tmp_path / "m")
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    found, elapsed = _getent("web2", "hosts", "example.com")
    assert found == set() and elapsed < 1.0
    assert _v4("web2", "www") == {"10.89.0.10"}


def test_a_new_peer_reaches_running_processes_and_no_other_sandboxs_files(
        tmp_path: Path) -> None:
    _host_resolvers(tmp_path)
    manifests = _write(tmp_path / "m")
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    files = {}
    for directory in Path("/etc/netns").iterdir():
        for file in directory.iterdir():
            files[file] = (file.read_bytes(), file.stat().st_ino)
    waiting = subprocess.Popen(
        ["ip", "netns", "exec", "web2", sys.executable, "-c",
         "import socket, time\n"
         "for _ in range(400):\n"
         "    try:\n"
         "        found = socket.getaddrinfo('newcomer', 80, socket.AF_INET)\n"
         "        print(found[0][4][0], flush=True); break\n"
         "    except socket.gaierror:\n"
         "        time.sleep(0.05)\n"],
        stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # it is asking, and failing, before the peer joins
    assert waiting.poll() is None
    bridges = _bridge_macs()
    _write(manifests, peer=True)
    plan = cnm("plan", "-f", str(manifests))
    assert "Sandbox/web1" not in plan.stdout and "Sandbox/web2" not in plan.stdout
    assert "newcomer 10.89.0.99" in plan.stdout  # the resolver's update says what it learns
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    out, _ = waiting.communicate(timeout=30)
    assert out.strip() == "10.89.0.99"
    # the gateway's MAC (the resolver's address) stays: a port joining does not change
    # it under the ARP caches of the sandboxes already there
    assert _bridge_macs() == bridges
    for file, (content, inode) in files.items():
        assert file.read_bytes() == content and file.stat().st_ino == inode, file

    # a file a sandbox's processes see is rewritten in place: the same inode
    hosts = Path("/etc/netns/web2/hosts")
    inode = hosts.stat().st_ino
    (manifests / "sandboxes.yaml").write_text(SANDBOXES.replace(
        "metadata: {name: web2}",
        "metadata: {name: web2}\nspec: {extraHosts: ['x.local:10.1.2.3']}"))
    shown = subprocess.Popen(["ip", "netns", "exec", "web2", "sh", "-c",
                              "read line; cat /etc/hosts"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    seen, _ = shown.communicate("go\n", timeout=20)
    assert "10.1.2.3\tx.local" in seen and hosts.stat().st_ino == inode


def test_a_killed_resolver_is_drift_that_plan_shows_and_apply_repairs(tmp_path: Path) -> None:
    _host_resolvers(tmp_path)
    manifests = _write(tmp_path / "m")
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    pid = _resolver_pid()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    plan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
    assert plan.returncode == 2
    assert "Resolver/default" in plan.stdout and "not running -> serving" in plan.stdout
    assert _getent("web2", "hosts", "www")[0] == set()
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    assert _resolver_pid() != pid
    assert _v4("web2", "www") == {"10.89.0.10"}
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2:][:1]


def test_sandboxes_of_the_previous_cnm_converge_in_one_apply(tmp_path: Path) -> None:
    """Sandboxes as cnm made them before the resolver: every peer in `hosts`, files
    replaced by rename, no resolver. One apply converges; the plan says what changes."""
    _host_resolvers(tmp_path)
    manifests = _write(tmp_path / "m")
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    os.kill(_resolver_pid(), signal.SIGKILL)
    for name in ("config.json", "pid", "log"):
        (RUN / name).unlink()
    RUN.rmdir()
    hosts = Path("/etc/netns/web2/hosts")
    old = hosts.read_text() + "10.89.0.10\tweb1-front www\n10.89.0.3\tapp-front\n"
    (hosts.parent / ".hosts.cnm-tmp").write_text(old)
    os.replace(hosts.parent / ".hosts.cnm-tmp", hosts)  # as the previous cnm wrote files
    resolv = Path("/etc/netns/web2/resolv.conf")
    resolv.unlink()  # the previous cnm wrote none without `dns`
    plan = cnm("plan", "-f", str(manifests))
    assert "+ Resolver/default" in plan.stdout
    assert "files.hosts: rewrite (+0 -2 lines)" in plan.stdout
    assert "files.resolv.conf: write (2 lines)" in plan.stdout
    applied = cnm("apply", "-f", str(manifests), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "web1-front" not in hosts.read_text()
    assert resolv.read_text().endswith("nameserver 10.89.0.1\n")
    assert _v4("web2", "www") == {"10.89.0.10"}
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0


def test_watch_repairs_a_killed_resolver_at_once(tmp_path: Path) -> None:
    """No netlink event tells of a dead process: watch follows the resolver's pidfd."""
    from watchlib import Watch

    _host_resolvers(tmp_path)
    manifests = _write(tmp_path / "m")
    watch = Watch("-f", str(manifests), "--resync", "3600")
    try:
        watch.started()
        time.sleep(3)  # the echoes of the first apply's own writes come and go
        pid = _resolver_pid()
        after = len(watch.lines)
        start = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        line = watch.wait_line(lambda text: "Resolver/default" in text, timeout=20,
                               after=after)
        assert "kernel: resolver:" in line and time.monotonic() - start < 10, line
        assert _resolver_pid() != pid
        assert _v4("web2", "www") == {"10.89.0.10"}
    finally:
        watch.stop()

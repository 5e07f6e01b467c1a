"""cnm next to a real dockerd (Debian docker.io 20.10 + containerd) on a "fresh host".

The test's own network + mount namespace (tests/isolation.py) plays the host, with IP
forwarding off as after a boot; dockerd turns it on itself and so sets the `ip filter`
FORWARD policy to drop. Every directory of dockerd and containerd is on tmpfs
(peers.host.private_dirs, peers.docker.Dockerd), both are ended by PID, and the image is
`docker import` of a busybox-static root (no registry).

Docker's side: two busybox containers on a docker network, one publishing a port. cnm's
side: two networks, three sandboxes, a published port (peers.cnm_set.CNM_SET). Verdicts: both
sides' traffic by real TCP; Docker's links, addresses, routes, rules and nftables (its
iptables-nft tables) identical after cnm's apply and delete, less the rules cnm marks in
DOCKER-USER; and a dockerd restart after a firewall reload (which leaves DOCKER-USER
empty) is drift that `cnm plan` shows and `cnm apply` and `cnm watch` repair.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from peers.cnm_set import CNM_EXPECTED, CNM_SET, cnm_apply, cnm_delete, cnm_traffic
from peers.docker import Dockerd
from peers.host import HOST, OUTSIDE, build_outside, end_process, private_dirs, wait_for
from peers.traffic import connect, serving
from peers.views import assert_unchanged, side

from helpers import REPO, cnm, write_manifests

DOCKER_EXPECTED = {"same network": "d2", "published port": "d2", "outbound": f"outside {HOST}"}
HTTPD = "mkdir -p /www && echo d2 > /www/index.html && exec httpd -f -p 80 -h /www"


def body(reply: str | None) -> str | None:
    """The body of an HTTP reply (busybox httpd's), or None without one."""
    return reply.replace("\r\n", "\n").split("\n\n", 1)[-1].strip() if reply else None


def start_containers(docker: Dockerd) -> None:
    image = docker.import_busybox()
    docker.run("network", "create", "--subnet", "172.30.0.0/24", "dnet")
    # --init: tini as PID 1 passes dockerd's SIGTERM on, so a restart does not wait 10 s;
    # --restart always: the containers come back after a dockerd restart
    common = ("run", "-d", "--init", "--restart", "always", "--network", "dnet")
    docker.run(*common, "--name", "d2", "-p", "8081:80", image, "sh", "-c", HTTPD)
    docker.run(*common, "--name", "d1", image, "sleep", "1000000")
    assert wait_for(lambda: running(docker), 60), docker.log("dockerd")


def running(docker: Dockerd) -> bool:
    """Both containers run and d2's httpd listens (a started container may not yet)."""
    states = docker.run("inspect", "-f", "{{.State.Running}}", "d1", "d2", check=False)
    if states.stdout.split() != ["true", "true"]:
        return False
    listening = docker.run("exec", "d2", "netstat", "-ltn", check=False).stdout
    return any(line.split()[3].endswith(":80") for line in listening.splitlines()
               if line.startswith("tcp"))


def docker_traffic(docker: Dockerd) -> dict[str, str | None]:
    d2 = docker.address("d2")
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {d2} 80"
    seen = {"same network": body(docker.run("exec", "d1", "sh", "-c", request,
                                            check=False).stdout),
            "published port": body(connect("outside", HOST, 8081))}
    with serving("outside", OUTSIDE, 7000, "outside"):
        seen["outbound"] = docker.run("exec", "d1", "nc", "-w", "3", OUTSIDE, "7000",
                                      check=False).stdout.strip() or None
    return seen


def docker_side(docker: Dockerd) -> dict[str, object]:
    """Docker's objects, its containers' namespaces included."""
    return side("peer", peer_netns={name: f"/proc/{docker.pid(name)}/ns/net"
                                    for name in ("d1", "d2")})


def forward_policy() -> str:
    out = subprocess.run(["nft", "-j", "list", "chain", "ip", "filter", "FORWARD"],
                         capture_output=True, text=True, check=True).stdout
    chain = next(o["chain"] for o in json.loads(out)["nftables"] if "chain" in o)
    return str(chain["policy"])


#: An admin's own boot-time ruleset (forwarding dropped), as `iptables-restore` loads it
#: on a firewall reload: it replaces the tables, Docker's chains and DOCKER-USER with them.
ADMIN_RULESET = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
"""


def firewall_reload_and_restart(docker: Dockerd) -> None:
    """A firewall reload, then Docker's documented remedy for it: restart dockerd, which
    re-creates its chains, DOCKER-USER empty (cnm's accepts went with the reload)."""
    subprocess.run(["iptables-restore"], input=ADMIN_RULESET, text=True, check=True)
    docker.stop_dockerd()
    docker.start()
    assert wait_for(lambda: running(docker), 60), docker.log("dockerd")


def test_docker_and_cnm_coexist(tmp_path: Path) -> None:
    base = private_dirs(tmp_path / "peers")
    build_outside()
    manifests = write_manifests(base / "manifests", CNM_SET)
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == "0\n"  # a fresh host
    docker = Dockerd(base)
    try:
        docker.start()
        assert forward_policy() == "drop"  # dockerd turned forwarding on, so it set this
        start_containers(docker)
        assert docker_traffic(docker) == DOCKER_EXPECTED
        docker_alone = docker_side(docker)

        cnm_apply(manifests)
        assert_unchanged(docker_alone, docker_side(docker), "Docker's objects, by cnm's apply")
        assert docker_traffic(docker) == DOCKER_EXPECTED
        assert cnm_traffic() == CNM_EXPECTED

        cnm_delete(manifests)
        assert_unchanged(docker_alone, docker_side(docker), "Docker's objects, by cnm's delete")
        assert docker_traffic(docker) == DOCKER_EXPECTED

        # a plain dockerd restart keeps DOCKER-USER (it only re-creates FORWARD's jumps)
        cnm_apply(manifests)
        docker.stop_dockerd()
        docker.start()
        assert wait_for(lambda: running(docker), 60), docker.log("dockerd")
        replan = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
        assert replan.returncode == 0, replan.stdout + replan.stderr
        assert cnm_traffic() == CNM_EXPECTED
        assert docker_traffic(docker) == DOCKER_EXPECTED

        # a restart after a firewall reload leaves DOCKER-USER empty: drift, shown, repaired
        firewall_reload_and_restart(docker)
        docker_restarted = docker_side(docker)
        drift = cnm("plan", "-f", str(manifests), "--detailed-exitcode")
        assert drift.returncode == 2, drift.stdout + drift.stderr
        assert "~ Network/front" in drift.stdout and "host_firewall" in drift.stdout, drift.stdout
        cnm_apply(manifests)
        assert_unchanged(docker_restarted, docker_side(docker),
                         "Docker's objects, by cnm's repair")
        assert cnm_traffic() == CNM_EXPECTED
        assert docker_traffic(docker) == DOCKER_EXPECTED

        # the same with `cnm watch` running: it notices and repairs by itself
        log = base / "watch.log"
        with open(log, "wb") as output:  # a file, not a pipe nobody reads: watch never blocks
            watch = subprocess.Popen(
                [sys.executable, "-m", "reconciler", "watch", "-f", str(manifests),
                 "--resync", "2"], cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        try:
            firewall_reload_and_restart(docker)
            plan_empty = lambda: cnm("plan", "-f", str(manifests),  # noqa: E731
                                     "--detailed-exitcode").returncode == 0
            assert wait_for(plan_empty, 30, 0.5), log.read_text()[-3000:]
            assert cnm_traffic() == CNM_EXPECTED
        finally:
            end_process(watch.pid)

        docker_now = docker_side(docker)
        cnm_delete(manifests)
        assert_unchanged(docker_now, docker_side(docker), "Docker's objects, by cnm's delete")
        assert docker_traffic(docker) == DOCKER_EXPECTED
    finally:
        docker.stop()

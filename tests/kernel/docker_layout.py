"""Docker 20.10's firewall layout, written with iptables-nft as dockerd writes it when it
has to turn IP forwarding on itself (a freshly booted host): `FORWARD` policy drop,
`DOCKER-USER` jumped to first, the isolation chains, accepts for its own bridge
`docker0`, and its nat chains. Used by the kernel tests of coexistence, in the test's
own namespace only. (tests/unit/host_firewall/*.json were captured from it.)
"""

from __future__ import annotations

import re
import subprocess

BRIDGE = "docker0"
SUBNET = "172.17.0.0/16"

FILTER = [
    "-P FORWARD DROP",
    "-N DOCKER", "-N DOCKER-ISOLATION-STAGE-1", "-N DOCKER-ISOLATION-STAGE-2", "-N DOCKER-USER",
    "-A FORWARD -j DOCKER-USER",
    "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
    f"-A FORWARD -o {BRIDGE} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    f"-A FORWARD -o {BRIDGE} -j DOCKER",
    f"-A FORWARD -i {BRIDGE} ! -o {BRIDGE} -j ACCEPT",
    f"-A FORWARD -i {BRIDGE} -o {BRIDGE} -j ACCEPT",
    f"-A DOCKER-ISOLATION-STAGE-1 -i {BRIDGE} ! -o {BRIDGE} -j DOCKER-ISOLATION-STAGE-2",
    "-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
    f"-A DOCKER-ISOLATION-STAGE-2 -o {BRIDGE} -j DROP",
    "-A DOCKER-ISOLATION-STAGE-2 -j RETURN",
    "-A DOCKER-USER -j RETURN",
]
NAT = [
    "-N DOCKER",
    "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
    f"-A POSTROUTING -s {SUBNET} ! -o {BRIDGE} -j MASQUERADE",
    f"-A DOCKER -i {BRIDGE} -j RETURN",
]


def install() -> None:
    """Write the layout into this namespace's iptables-nft tables."""
    for table, commands in (("filter", FILTER), ("nat", NAT)):
        for command in commands:
            subprocess.run(["iptables-nft", "-t", table, *command.split()], check=True)


def restart_rewrite() -> None:
    """What a dockerd restart may leave: DOCKER-USER rewritten as Docker keeps it
    (flushed, its RETURN back), the FORWARD jumps re-inserted on top."""
    subprocess.run(["iptables-nft", "-F", "DOCKER-USER"], check=True)
    subprocess.run(["iptables-nft", "-A", "DOCKER-USER", "-j", "RETURN"], check=True)
    subprocess.run(["iptables-nft", "-D", "FORWARD", "-j", "DOCKER-USER"], check=True)
    subprocess.run(["iptables-nft", "-I", "FORWARD", "-j", "DOCKER-USER"], check=True)


def save() -> list[str]:
    """`iptables-nft-save` of the filter and nat tables, counters and dates left out
    (the policies' packet counts change with traffic)."""
    out = subprocess.run(["iptables-nft-save"], capture_output=True, text=True, check=True).stdout
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines()
            if not line.startswith("#")]


def without_cnm(lines: list[str]) -> list[str]:
    return [line for line in lines if "cnm/v1 " not in line]

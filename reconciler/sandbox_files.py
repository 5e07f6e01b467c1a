"""Contents of a sandbox's /etc/netns/<netns>/ files, as `ip netns exec` bind-mounts them.

`resolv.conf` is written only when the Sandbox sets `dns`; without it,
`ip netns exec` leaves the host's /etc/resolv.conf visible, which is what a
user who said nothing about DNS expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.model import Sandbox

HOSTS_HEADER = (
    "# Managed by cnm; changes are overwritten on the next apply.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
)


@dataclass(frozen=True)
class HostEntry:
    """One /etc/hosts line: an address and its names, in order."""

    address: str
    names: tuple[str, ...]


def hostname_file(sandbox: Sandbox) -> str:
    return sandbox.effective_hostname + "\n"


def hosts_lines(entries: Sequence[HostEntry]) -> str:
    """/etc/hosts lines for `entries`."""
    return "".join(f"{e.address}\t{' '.join(e.names)}\n" for e in entries)


def hosts_file(sandbox: Sandbox, own: Sequence[str], peers: str) -> str:
    """Own addresses with the hostname, then extraHosts, then `peers` (rendered lines)."""
    spec = sandbox.spec
    names = [sandbox.effective_hostname]
    if spec.domainname:
        names.insert(0, f"{sandbox.effective_hostname}.{spec.domainname}")
    lines = [HOSTS_HEADER]
    lines += [f"{address}\t{' '.join(names)}\n" for address in own]
    for entry in spec.extra_hosts:
        name, _, address = entry.partition(":")
        lines.append(f"{address}\t{name}\n")
    lines.append(peers)
    return "".join(lines)


def resolv_conf_file(sandbox: Sandbox) -> str | None:
    dns = sandbox.spec.dns
    if dns is None:
        return None
    lines = [f"nameserver {server}\n" for server in dns.servers]
    if dns.search:
        lines.append(f"search {' '.join(dns.search)}\n")
    if dns.options:
        lines.append(f"options {' '.join(dns.options)}\n")
    return "# Managed by cnm.\n" + "".join(lines)

"""Contents of a sandbox's /etc/netns/<netns>/ files, as `ip netns exec` bind-mounts them.

`hosts` holds the sandbox's own names and its `extraHosts`, nothing of its
peers (Docker's semantics): peers are cnm's resolver's (reconciler/resolver),
so one more endpoint changes no other sandbox's files.

`resolv.conf` names cnm's resolver when the sandbox is on a network it serves
(the sandbox's `dns.servers` are then the resolver's upstreams for it); else
it is written only when the Sandbox sets `dns`; without it, `ip netns exec`
leaves the host's /etc/resolv.conf visible, which is what a user who said
nothing about DNS expects.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.model import Sandbox

HOSTS_HEADER = (
    "# Managed by cnm; changes are overwritten on the next apply.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
)


def hostname_file(sandbox: Sandbox) -> str:
    return sandbox.effective_hostname + "\n"


def hosts_file(sandbox: Sandbox, own: Sequence[str]) -> str:
    """Own addresses with the hostname, then extraHosts."""
    spec = sandbox.spec
    names = [sandbox.effective_hostname]
    if spec.domainname:
        names.insert(0, f"{sandbox.effective_hostname}.{spec.domainname}")
    lines = [HOSTS_HEADER]
    lines += [f"{address}\t{' '.join(names)}\n" for address in own]
    for entry in spec.extra_hosts:
        name, _, address = entry.partition(":")
        lines.append(f"{address}\t{name}\n")
    return "".join(lines)


def resolv_conf_file(sandbox: Sandbox, resolvers: Sequence[str] = ()) -> str | None:
    """`resolvers`: cnm's resolver's addresses on the sandbox's networks (at most three,
    as glibc reads no more); they replace `dns.servers`, which become its upstreams."""
    dns = sandbox.spec.dns
    if dns is None and not resolvers:
        return None
    servers = list(resolvers[:3]) if resolvers else [str(s) for s in dns.servers] if dns else []
    lines = [f"nameserver {server}\n" for server in servers]
    if dns is None:
        return "# Managed by cnm.\n" + "".join(lines)
    if dns.search:
        lines.append(f"search {' '.join(dns.search)}\n")
    if dns.options:
        lines.append(f"options {' '.join(dns.options)}\n")
    return "# Managed by cnm.\n" + "".join(lines)

"""The rules of a bridge network's settings: isolation (and `internal`), `icc`,
`masquerade`, and `localhost` (published ports reachable on the host's 127.0.0.1)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from reconciler.firewall.expr import (
    DNAT,
    DROP,
    MASQUERADE,
    NOT_DNAT,
    NOT_REPLY,
    TO_PORTS,
    interfaces,
    ip_family,
    match,
    meta,
    payload,
    prefix,
)
from reconciler.firewall.table import Rule

#: Destinations in the host's IPv4 loopback network.
LOOPBACK4 = match(payload("ip", "daddr"), prefix("127.0.0.0/8"))


def isolation_rules(
    comment: str, bridge: str, subnets: Sequence[str], internal: bool
) -> list[Rule]:
    """Nothing new enters the network from elsewhere (published ports excepted); if
    internal, nothing leaves it either. Otherwise hairpin traffic (a sandbox reaching a
    published port of the host that leads back into this network) is masqueraded so
    that replies come back through the host."""
    rules = [Rule.of(
        "inet", "forward", comment,
        match(meta("oifname"), bridge), match(meta("iifname"), bridge, "!="),
        NOT_REPLY, NOT_DNAT, DROP,
    )]
    if internal:
        rules.append(Rule.of(
            "inet", "forward", comment,
            match(meta("iifname"), bridge), match(meta("oifname"), bridge, "!="), DROP,
        ))
        return rules
    for subnet in subnets:
        version = ipaddress.ip_network(subnet).version
        rules.append(Rule.of(
            "inet", "postrouting", comment,
            match(meta("oifname"), bridge),
            match(payload(ip_family(version), "saddr"), prefix(subnet)),
            DNAT, MASQUERADE,
        ))
    return rules


def icc_rules(comment: str, bridge: str, veths: Sequence[str], icc: bool) -> list[Rule]:
    """icc off: frames between the network's ports are dropped in the bridge forward
    hook; same-bridge IP traffic is also dropped in the inet forward hook, where it
    appears when br_netfilter passes bridged traffic to IP hooks."""
    if icc:
        return []
    rules = [Rule.of(
        "inet", "forward", comment,
        match(meta("iifname"), bridge), match(meta("oifname"), bridge), NOT_DNAT, DROP,
    )]
    if veths:
        rules.append(Rule.of("bridge", "forward", comment,
                             match(meta("iifname"), interfaces(veths)), DROP))
    return rules


def icc_port_rules(comment: str, veth: str) -> list[Rule]:
    """The `icc: false` drop of one endpoint on another apply set's network: the owner's
    bridge rule lists only the owner's ports (shared_networks.py); its same-bridge IP
    drop matches the bridge, so it already covers this port."""
    return [Rule.of("bridge", "forward", comment, match(meta("iifname"), interfaces([veth])),
                    DROP)]


def masquerade_rules(
    comment: str, bridge: str, subnets: Sequence[str], masquerade: bool
) -> list[Rule]:
    """Traffic from the network's subnets that leaves through another interface."""
    if not masquerade:
        return []
    rules = []
    for subnet in subnets:
        version = ipaddress.ip_network(subnet).version
        rules.append(Rule.of(
            "inet", "postrouting", comment,
            match(payload(ip_family(version), "saddr"), prefix(subnet)),
            match(meta("oifname"), bridge, "!="), MASQUERADE,
        ))
    return rules


def localhost_rules(comment: str, bridge: str, on: bool) -> list[Rule]:
    """Published ports on the host's own 127.0.0.0/8, as Docker without its proxy does.

    The host's connections to a loopback address look up the published ports (a
    connection to an address of the host already does, through the table's own
    rules); those DNATed into this network leave with a loopback source, which the
    kernel allows out of the bridge only with its `route_localnet` switch on (the
    `route_localnet` attribute) and which is masqueraded to the bridge's address so
    that the sandbox can answer. `route_localnet` would also let a sandbox reach the
    host's loopback services by sending to 127.0.0.1 through the bridge: dropped.
    Every network has the jump, so a host with N networks walks `ports` up to N times
    for a loopback connection that is not a published port (a few rules each).
    """
    if not on:
        return []
    return [
        Rule.of("inet", "output", comment, LOOPBACK4, TO_PORTS),
        Rule.of("inet", "postrouting", comment,
                match(meta("oifname"), bridge),
                match(payload("ip", "saddr"), prefix("127.0.0.0/8")), MASQUERADE),
        Rule.of("inet", "prerouting", comment, match(meta("iifname"), bridge), LOOPBACK4, DROP),
    ]

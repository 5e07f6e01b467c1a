"""Host-wide settings a plan may change (the IP forwarding sysctls), as plan lines.

A bridge network that routes needs the host's forwarding switch of its IP
version on, and cnm (like libnetwork) turns it on and never off again. That is
a change to the whole host, not to one network: turning on
`net.ipv6.conf.all.forwarding` makes every interface with `accept_ra=1` stop
accepting router advertisements. So a plan lists it as a line of its own
(`~ Host/net.ipv6.conf.all.forwarding  0 -> 1`), computed here from the
desired networks and the switches the observation read (`State.host_settings`).

Pure: the kernel side reads and writes the switches (kernel/sysctl.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.diff import Change
from reconciler.state import AttrValue, State

#: IP version -> the sysctl that switches its forwarding on.
FORWARDING_SYSCTLS: Mapping[int, str] = {4: "net.ipv4.ip_forward",
                                         6: "net.ipv6.conf.all.forwarding"}
#: Why each switch matters beyond cnm's networks (shown on its plan line).
CONSEQUENCES: Mapping[str, str] = {
    "net.ipv4.ip_forward": "host-wide: the host routes IPv4 between all its interfaces",
    "net.ipv6.conf.all.forwarding": "host-wide: the host routes IPv6 between all its "
                                    "interfaces, and interfaces with accept_ra=1 stop "
                                    "accepting router advertisements",
}


def forwarding_settings(forwarding: Mapping[int, bool]) -> dict[str, AttrValue]:
    """`State.host_settings` from the forwarding switches (IP version -> on) as read."""
    return {FORWARDING_SYSCTLS[v]: int(on) for v, on in sorted(forwarding.items())}


def settings_changes(desired: State, observed: State) -> tuple[Change, ...]:
    """The host-wide settings applying `desired` over `observed` turns on."""
    changes = []
    for version, name in sorted(FORWARDING_SYSCTLS.items()):
        attr = f"forwarding.ipv{version}"
        if not any(n.get(attr) is True for n in desired.of_kind("Network")):
            continue
        have = observed.host_settings.get(name)
        if have is None:  # a snapshot without host settings: what its networks show
            seen = {n.get(attr) for n in observed.of_kind("Network")} - {None}
            have = 0 if False in seen else None
        if have == 0:
            changes.append(Change(name, 0, 1))
    return tuple(changes)

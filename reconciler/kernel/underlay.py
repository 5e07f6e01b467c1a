"""This host's underlay, as the fleet needs it: the advertise address (the local VTEP)
and the MTU of the interface that carries it. Read-only."""

from __future__ import annotations

import ipaddress
import socket

from reconciler.kernel.rtnl import Rtnl


def source_address(endpoint: str) -> str | None:
    """The source address of the route to `endpoint` ("IP:PORT", IPv6 in brackets), as the
    kernel picks it; None without a route. A connected UDP socket sends nothing."""
    host, _, port = endpoint.rpartition(":")
    address = ipaddress.ip_address(host.strip("[]"))
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((str(address), int(port)))
        except OSError:
            return None
        return str(probe.getsockname()[0])


def mtu_of_address(address: str) -> int | None:
    """The MTU of the link holding `address` in this namespace; None if no link holds it."""
    wanted = str(ipaddress.ip_address(address))
    with Rtnl() as rtnl:
        index = next((a.index for a in rtnl.addresses() if a.address == wanted), None)
        if index is None:
            return None
        link = next((link for link in rtnl.links() if link.index == index), None)
        return link.mtu if link is not None else None

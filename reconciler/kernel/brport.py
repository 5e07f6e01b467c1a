"""Bridge port flags over rtnetlink (AF_BRIDGE): read all ports' hairpin mode, set one.

A sandbox that connects to a published port of the host which leads back to
itself sends its packet out through its bridge port and needs it back
through the same port. When br_netfilter passes bridged IPv4 traffic to the
IP hooks (it is built into many kernels and on by default), the DNAT happens
on the bridge path and the bridge, not the router, delivers the packet: to
the port it came from, which a bridge only does in hairpin mode. Docker sets
it on its ports for the same reason (with the userland proxy disabled).

This is the only link attribute cnm's firewall needs, so it has its own
two small requests here instead of a place in the link steps.
"""

from __future__ import annotations

from reconciler.kernel.netlink import (
    NETLINK_ROUTE,
    NLA_F_NESTED,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NetlinkSocket,
    Reply,
    attr,
    nested,
    pick_attributes,
    text,
)
from reconciler.kernel.rtnl import IFINFOMSG, IFLA_IFNAME, IFLA_LINKINFO, RTM_GETLINK, RTM_NEWLINK

AF_BRIDGE = 7
RTM_SETLINK = 19
IFLA_PROTINFO = 12
IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 4, 5
IFLA_BRPORT_MODE = 4  # hairpin

_PORT_ATTRS = (IFLA_IFNAME, IFLA_PROTINFO)


def _hairpin(port_attrs: bytes) -> bool:
    """The hairpin flag in a nest of bridge port attributes (IFLA_PROTINFO or the
    link's slave data): absent counts as off."""
    return nested(port_attrs, (IFLA_BRPORT_MODE,)).get(IFLA_BRPORT_MODE, b"\0")[:1] == b"\1"


def _exchange(msg_type: int, flags: int, body: bytes) -> list[Reply]:
    """One request in the current network namespace (a socket of its own); its replies."""
    with NetlinkSocket(NETLINK_ROUTE) as sock:
        return sock.exchange(msg_type, flags, body)


def decode_port(data: bytes, offset: int, end: int) -> tuple[str, int, bool] | None:
    """(name, ifindex, hairpin on) of an AF_BRIDGE RTM_NEWLINK payload; None if it is not
    a port's (a bridge itself has no IFLA_PROTINFO)."""
    _, _, index, _, _ = IFINFOMSG.unpack_from(data, offset)
    attrs = pick_attributes(data, offset + IFINFOMSG.size, end, _PORT_ATTRS)
    if IFLA_IFNAME not in attrs or IFLA_PROTINFO not in attrs:
        return None
    return text(attrs[IFLA_IFNAME]), index, _hairpin(attrs[IFLA_PROTINFO])


def hairpin_ports() -> dict[str, tuple[int, bool]]:
    """Every bridge port of this namespace: name -> (ifindex, hairpin mode on)."""
    ports: dict[str, tuple[int, bool]] = {}
    request = IFINFOMSG.pack(AF_BRIDGE, 0, 0, 0, 0)
    for kind, data, offset, end in _exchange(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, request):
        port = decode_port(data, offset, end) if kind == RTM_NEWLINK else None
        if port is not None:
            ports[port[0]] = port[1:]
    return ports


def hairpin_of(index: int) -> bool | None:
    """Hairpin mode of bridge port `index` (one request, from its link's slave info),
    or None when the link is not a bridge port."""
    request = IFINFOMSG.pack(0, 0, index, 0, 0)
    for kind, data, offset, end in _exchange(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, request):
        if kind != RTM_NEWLINK:
            continue
        attrs = pick_attributes(data, offset + IFINFOMSG.size, end, (IFLA_LINKINFO,))
        info = nested(attrs.get(IFLA_LINKINFO, b""), (IFLA_INFO_SLAVE_KIND,
                                                      IFLA_INFO_SLAVE_DATA))
        if text(info.get(IFLA_INFO_SLAVE_KIND, b"")) != "bridge":
            return None
        return _hairpin(info.get(IFLA_INFO_SLAVE_DATA, b""))
    return None


def set_hairpin(index: int, on: bool) -> None:
    """Turn hairpin mode of bridge port `index` on or off."""
    protinfo = attr(IFLA_PROTINFO | NLA_F_NESTED, attr(IFLA_BRPORT_MODE, bytes([int(on)])))
    _exchange(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, IFINFOMSG.pack(AF_BRIDGE, 0, index, 0, 0)
              + protinfo)

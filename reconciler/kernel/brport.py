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

import os
import socket
import struct
from collections.abc import Iterator

from reconciler.kernel.rtnl import pick_attributes, receive

NETLINK_ROUTE = 0
AF_BRIDGE = 7
RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK = 16, 18, 19
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_IFNAME, IFLA_PROTINFO, IFLA_LINKINFO = 3, 12, 18
IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 4, 5
IFLA_BRPORT_MODE = 4  # hairpin
NLA_F_NESTED = 0x8000

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_NLATTR = struct.Struct("=HH")
_PORT_ATTRS = (IFLA_IFNAME, IFLA_PROTINFO)


def _nested(data: bytes, wanted: tuple[int, ...]) -> dict[int, bytes]:
    return pick_attributes(data, 0, len(data), wanted)


def _hairpin(port_attrs: bytes) -> bool:
    """The hairpin flag in a nest of bridge port attributes (IFLA_PROTINFO or the
    link's slave data): absent counts as off."""
    return _nested(port_attrs, (IFLA_BRPORT_MODE,)).get(IFLA_BRPORT_MODE, b"\0")[:1] == b"\1"


def _exchange(msg_type: int, flags: int, body: bytes) -> Iterator[bytes]:
    """Send one request in the current network namespace; yield each reply message."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, flags, 1, 0) + body)
        while True:
            data = receive(sock)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
                message = data[offset : offset + length]
                offset += (length + 3) & ~3
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", message, _NLMSGHDR.size)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return
                yield message


def hairpin_ports() -> dict[str, tuple[int, bool]]:
    """Every bridge port of this namespace: name -> (ifindex, hairpin mode on)."""
    ports: dict[str, tuple[int, bool]] = {}
    request = _IFINFOMSG.pack(AF_BRIDGE, 0, 0, 0, 0)
    for message in _exchange(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, request):
        _, kind, _, _, _ = _NLMSGHDR.unpack_from(message, 0)
        if kind != RTM_NEWLINK:
            continue
        _, _, index, _, _ = _IFINFOMSG.unpack_from(message, _NLMSGHDR.size)
        attrs = pick_attributes(message, _NLMSGHDR.size + _IFINFOMSG.size, len(message),
                                _PORT_ATTRS)
        if IFLA_IFNAME not in attrs or IFLA_PROTINFO not in attrs:
            continue
        name = attrs[IFLA_IFNAME].split(b"\0", 1)[0].decode()
        ports[name] = (index, _hairpin(attrs[IFLA_PROTINFO]))
    return ports


def hairpin_of(index: int) -> bool | None:
    """Hairpin mode of bridge port `index` (one request, from its link's slave info),
    or None when the link is not a bridge port."""
    request = _IFINFOMSG.pack(0, 0, index, 0, 0)
    for message in _exchange(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, request):
        attrs = pick_attributes(message, _NLMSGHDR.size + _IFINFOMSG.size, len(message),
                                (IFLA_LINKINFO,))
        info = _nested(attrs.get(IFLA_LINKINFO, b""), (IFLA_INFO_SLAVE_KIND,
                                                      IFLA_INFO_SLAVE_DATA))
        if info.get(IFLA_INFO_SLAVE_KIND, b"").split(b"\0", 1)[0] != b"bridge":
            return None
        return _hairpin(info.get(IFLA_INFO_SLAVE_DATA, b""))
    return None


def set_hairpin(index: int, on: bool) -> None:
    """Turn hairpin mode of bridge port `index` on or off."""
    inner = _NLATTR.pack(5, IFLA_BRPORT_MODE) + bytes([int(on)]) + b"\0\0\0"
    nest = _NLATTR.pack(4 + len(inner), IFLA_PROTINFO | NLA_F_NESTED) + inner
    body = _IFINFOMSG.pack(AF_BRIDGE, 0, index, 0, 0) + nest
    for _ in _exchange(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, body):
        pass

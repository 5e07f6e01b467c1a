"""Neighbour and forwarding-database entries over rtnetlink (RTM_*NEIGH), on `exchange()`.

Two tables share one message format: a VXLAN device's forwarding database
(family AF_BRIDGE, flag NTF_SELF: a MAC, or all zeros for broadcast and unknown
traffic, sent to a remote VTEP given as NDA_DST) and the IPv4/IPv6 neighbour
table (an IP address and its MAC). The overlay driver programs both, one
entry per remote endpoint, permanent, so no multicast and no learning is
needed. Only the attributes cnm reads are decoded.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.kernel.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NetlinkSocket,
    attr,
    pick_attributes,
)

RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
NDA_DST, NDA_LLADDR = 1, 2
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
NLM_F_APPEND = 0x800
AF_BRIDGE = 7
NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_WANTED = frozenset({NDA_DST, NDA_LLADDR})


@dataclass(frozen=True)
class Neighbour:
    """One entry: of the forwarding database (`family` AF_BRIDGE; `dst` the remote VTEP)
    or of the neighbour table (`family` AF_INET/AF_INET6; `dst` the IP address)."""

    family: int
    index: int
    mac: str
    dst: str | None
    state: int = NUD_PERMANENT
    flags: int = 0

    @property
    def permanent(self) -> bool:
        return bool(self.state & NUD_PERMANENT)


def fdb_entry(index: int, mac: str, vtep: str) -> Neighbour:
    return Neighbour(AF_BRIDGE, index, mac, vtep, NUD_PERMANENT, NTF_SELF)


def neighbour_entry(index: int, address: str, mac: str) -> Neighbour:
    family = socket.AF_INET if ipaddress.ip_address(address).version == 4 else socket.AF_INET6
    return Neighbour(family, index, mac, address, NUD_PERMANENT, 0)


def _ip(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def decode(data: bytes, offset: int, end: int) -> Neighbour:
    family, index, state, flags, _type = NDMSG.unpack_from(data, offset)
    found = pick_attributes(data, offset + NDMSG.size, end, _WANTED)
    raw_mac, raw_dst = found.get(NDA_LLADDR), found.get(NDA_DST)
    return Neighbour(
        family=family, index=index, state=state, flags=flags,
        mac=raw_mac.hex(":") if raw_mac else "",
        dst=_ip(raw_dst) if raw_dst and len(raw_dst) in (4, 16) else None,
    )


def dump(netlink: NetlinkSocket, family: int) -> list[Neighbour]:
    """Every entry of `family`'s table in the socket's namespace (the caller filters)."""
    body = NDMSG.pack(family, 0, 0, 0, 0)
    replies = netlink.exchange(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, body)
    return [decode(data, offset, end) for kind, data, offset, end in replies
            if kind == RTM_NEWNEIGH]


def _body(entry: Neighbour) -> bytes:
    body = NDMSG.pack(entry.family, entry.index, entry.state, entry.flags, 0)
    if entry.mac:
        body += attr(NDA_LLADDR, bytes(int(p, 16) for p in entry.mac.split(":")))
    if entry.dst is not None:
        body += attr(NDA_DST, ipaddress.ip_address(entry.dst).packed)
    return body


def add_request(entry: Neighbour, *, append: bool = False) -> tuple[int, int, bytes]:
    """The change that creates or replaces the entry; `append` adds one more destination
    for the same MAC (the all-zero flood entries, one per remote VTEP)."""
    return RTM_NEWNEIGH, NLM_F_CREATE | (NLM_F_APPEND if append else NLM_F_REPLACE), _body(entry)


def delete_request(entry: Neighbour) -> tuple[int, int, bytes]:
    return RTM_DELNEIGH, 0, _body(entry)


def add(netlink: NetlinkSocket, entry: Neighbour, *, append: bool = False) -> None:
    """Create or replace the entry (see `add_request`)."""
    msg_type, flags, body = add_request(entry, append=append)
    netlink.exchange(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, body)


def delete(netlink: NetlinkSocket, entry: Neighbour) -> None:
    netlink.exchange(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK, _body(entry))


def change_all(netlink: NetlinkSocket, changes: Sequence[tuple[int, int, bytes]]) -> None:
    """Many `add_request`/`delete_request` changes, in order, a few datagrams in all
    (`NetlinkSocket.request_all`): hundreds of remote entries cost a few round trips."""
    netlink.request_all(changes)

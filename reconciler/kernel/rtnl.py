"""A lean, read-only rtnetlink dump reader for observation.

Why not pyroute2 here: observation is the hot path of every plan, and
pyroute2 parses every attribute of every message (statistics, per-family
configuration blocks) into Python objects, which costs 10-20x the kernel's
own time and adds ~0.25 s of imports to each `cnm plan`. This module asks for
three dumps (links, addresses, routes), skips statistics in the kernel
(RTEXT_FILTER_SKIP_STATS), and decodes only the handful of attributes the
diff needs. Writes still go through pyroute2 (`kernel/apply.py`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from reconciler.kernel import netns

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_GROUP, IFLA_EXT_MASK = 18, 20, 27, 29
IFLA_INFO_KIND = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY, RTA_TABLE = 4, 5, 15

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NLATTR = struct.Struct("=HH")
_RECV_BUFFER = 1 << 20


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    flags: int
    mtu: int
    master: int | None
    group: int
    alias: str | None
    mac: str | None
    peer_index: int | None
    kind: str | None

    @property
    def up(self) -> bool:
        return bool(self.flags & 0x1)


@dataclass(frozen=True)
class Address:
    index: int
    version: int
    prefixlen: int
    scope: int
    address: str

    @property
    def text(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True)
class Route:
    version: int
    dst_len: int
    table: int
    oif: int | None
    gateway: str | None


def _attributes(data: bytes, offset: int, end: int) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= end:
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _u32(value: bytes) -> int:
    return int(struct.unpack_from("=I", value)[0])


class RtnlReader:
    """One NETLINK_ROUTE socket in one namespace, for dumps."""

    def __init__(self, namespace: str | None = None) -> None:
        with netns.entered(namespace):
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def _dump(self, msg_type: int, body: bytes) -> Iterator[tuple[int, bytes, int]]:
        """Yield (message type, whole buffer, payload offset) of every dumped message."""
        self._seq += 1
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type,
                                NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0)
        self._sock.send(header + body)
        while True:
            data = self._sock.recv(_RECV_BUFFER)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    return
                if seq == self._seq:
                    if kind == NLMSG_DONE:
                        return
                    if kind == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", data, offset + _NLMSGHDR.size)[0]
                        if code:
                            raise OSError(code, os.strerror(code))
                        return
                    yield kind, data[offset : offset + length], _NLMSGHDR.size
                offset += (length + 3) & ~3

    def links(self) -> list[Link]:
        mask = _NLATTR.pack(8, IFLA_EXT_MASK) + struct.pack("=I", RTEXT_FILTER_SKIP_STATS)
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + mask
        result = []
        for kind, msg, offset in self._dump(RTM_GETLINK, body):
            if kind != RTM_NEWLINK:
                continue
            _, _, index, flags, _ = _IFINFOMSG.unpack_from(msg, offset)
            attrs = dict(_attributes(msg, offset + _IFINFOMSG.size, len(msg)))
            info = dict(_attributes(attrs[IFLA_LINKINFO], 0, len(attrs[IFLA_LINKINFO]))) \
                if IFLA_LINKINFO in attrs else {}
            mac = attrs.get(IFLA_ADDRESS)
            result.append(
                Link(
                    index=index,
                    name=_text(attrs.get(IFLA_IFNAME, b"")),
                    flags=flags,
                    mtu=_u32(attrs[IFLA_MTU]) if IFLA_MTU in attrs else 0,
                    master=_u32(attrs[IFLA_MASTER]) if IFLA_MASTER in attrs else None,
                    group=_u32(attrs[IFLA_GROUP]) if IFLA_GROUP in attrs else 0,
                    alias=_text(attrs[IFLA_IFALIAS]) if IFLA_IFALIAS in attrs else None,
                    mac=":".join(f"{b:02x}" for b in mac) if mac else None,
                    peer_index=_u32(attrs[IFLA_LINK]) if IFLA_LINK in attrs else None,
                    kind=_text(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None,
                )
            )
        return result

    def addresses(self) -> list[Address]:
        body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        result = []
        for kind, msg, offset in self._dump(RTM_GETADDR, body):
            if kind != RTM_NEWADDR:
                continue
            family, prefixlen, _flags, scope, index = _IFADDRMSG.unpack_from(msg, offset)
            attrs = dict(_attributes(msg, offset + _IFADDRMSG.size, len(msg)))
            raw = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
            if raw is None:
                continue
            address = ipaddress.ip_address(raw)
            result.append(Address(index, address.version, prefixlen, scope, str(address)))
        return result

    def routes(self) -> list[Route]:
        body = _RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)
        result = []
        for kind, msg, offset in self._dump(RTM_GETROUTE, body):
            if kind != RTM_NEWROUTE:
                continue
            family, dst_len, _, _, table, _, _, _, _ = _RTMSG.unpack_from(msg, offset)
            attrs = dict(_attributes(msg, offset + _RTMSG.size, len(msg)))
            if RTA_TABLE in attrs:
                table = _u32(attrs[RTA_TABLE])
            gateway = attrs.get(RTA_GATEWAY)
            result.append(
                Route(
                    version=4 if family == socket.AF_INET else 6,
                    dst_len=dst_len,
                    table=table,
                    oif=_u32(attrs[RTA_OIF]) if RTA_OIF in attrs else None,
                    gateway=str(ipaddress.ip_address(gateway)) if gateway else None,
                )
            )
        return result

"""Forget UDP conntrack entries of a host port whose mapping changed (ctnetlink, no library).

UDP has no connection end: a client that keeps sending keeps its conntrack
entry alive, and the entry keeps the NAT decision made when it was created.
After a published UDP port is added, moved or removed, entries created under
the old mapping would keep sending that client's packets to the old place
(or to the host itself). Docker, netavark and the CNI portmap plugin flush
them; so does cnm, right after the nft transaction commits.

Only entries whose original direction is UDP to the host port (and to the
host address, when the mapping is bound to one) are deleted, and never those
that were only source-NATed: those are sandboxes' own outgoing flows to
some remote service on the same port number.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Collection, Iterator

from reconciler.kernel.rtnl import receive

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
CTA_TUPLE_ORIG, CTA_STATUS, CTA_ZONE = 1, 3, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_DST, CTA_IP_V6_DST = 2, 4
CTA_PROTO_NUM, CTA_PROTO_DST_PORT = 1, 3
IPS_SRC_NAT, IPS_DST_NAT = 1 << 4, 1 << 5

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")
_NLATTR = struct.Struct("=HH")


def _attributes(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(type, payload, the whole attribute as received) of each attribute."""
    offset = 0
    while offset + 4 <= len(data):
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, data[offset + 4 : offset + length], data[offset : offset + length]
        offset += (length + 3) & ~3


def _nested(data: bytes) -> dict[int, bytes]:
    return {kind: payload for kind, payload, _ in _attributes(data)}


class _Ctnetlink:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _send(self, msg_type: int, flags: int, family: int, payload: bytes) -> int:
        self.seq += 1
        body = _NFGENMSG.pack(family, 0, 0) + payload
        kind = (NFNL_SUBSYS_CTNETLINK << 8) | msg_type
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, self.seq, 0) + body)
        return self.seq

    def _replies(self, seq: int) -> Iterator[bytes]:
        """Bodies (after nfgenmsg) of the replies to `seq`, until DONE or the ACK."""
        while True:
            data = receive(self.sock)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _, got, _ = _NLMSGHDR.unpack_from(data, offset)
                message = data[offset : offset + length]
                offset += (length + 3) & ~3
                if got != seq:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", message, _NLMSGHDR.size)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return
                yield message[_NLMSGHDR.size + _NFGENMSG.size :]

    def dump(self, family: int) -> Iterator[bytes]:
        seq = self._send(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, family, b"")
        yield from self._replies(seq)

    def delete(self, family: int, attributes: bytes) -> None:
        seq = self._send(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, family, attributes)
        try:
            for _ in self._replies(seq):
                pass
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # gone already (timed out meanwhile)
                raise


def _stale(body: bytes, version: int, targets: Collection[tuple[int, str | None]]) -> bytes | None:
    """The attributes that name this entry for deletion, if it is one to forget.

    `targets`: (host port, host address or None for any) pairs.
    """
    attrs = {kind: (payload, whole) for kind, payload, whole in _attributes(body)}
    if CTA_TUPLE_ORIG not in attrs:
        return None
    status = struct.unpack("!I", attrs[CTA_STATUS][0])[0] if CTA_STATUS in attrs else 0
    if status & IPS_SRC_NAT and not status & IPS_DST_NAT:
        return None
    tuple_attrs = _nested(attrs[CTA_TUPLE_ORIG][0])
    proto = _nested(tuple_attrs.get(CTA_TUPLE_PROTO, b""))
    if proto.get(CTA_PROTO_NUM, b"\0")[0] != socket.IPPROTO_UDP:
        return None
    dport = proto.get(CTA_PROTO_DST_PORT)
    if dport is None:
        return None
    port = struct.unpack("!H", dport)[0]
    if (port, None) not in targets:
        addresses = _nested(tuple_attrs.get(CTA_TUPLE_IP, b""))
        dst = addresses.get(CTA_IP_V4_DST if version == 4 else CTA_IP_V6_DST)
        if dst is None or (port, str(ipaddress.ip_address(dst))) not in targets:
            return None
    selector = _padded(attrs[CTA_TUPLE_ORIG][1])
    if CTA_ZONE in attrs:
        selector += _padded(attrs[CTA_ZONE][1])
    return selector


def _padded(attribute: bytes) -> bytes:
    return attribute + b"\0" * (-len(attribute) % 4)


def flush_udp(version: int, targets: Collection[tuple[int, str | None]]) -> int:
    """Delete the UDP entries to any (host port, host address or None = any) of `targets`,
    with one dump of the table however many targets there are; returns how many."""
    if not targets:
        return 0
    wanted = {(port, str(ipaddress.ip_address(ip)) if ip else None) for port, ip in targets}
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    link = _Ctnetlink()
    try:
        doomed = [s for body in link.dump(family)
                  if (s := _stale(body, version, wanted)) is not None]
        for selector in doomed:
            link.delete(family, selector)
        return len(doomed)
    finally:
        link.close()

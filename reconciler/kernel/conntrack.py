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
import socket
import struct
from collections.abc import Collection, Iterator

from reconciler.kernel.netlink import (
    NETLINK_NETFILTER,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NetlinkSocket,
    pad,
    walk_attributes,
)

NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
CTA_TUPLE_ORIG, CTA_STATUS, CTA_ZONE = 1, 3, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_DST, CTA_IP_V6_DST = 2, 4
CTA_PROTO_NUM, CTA_PROTO_DST_PORT = 1, 3
IPS_SRC_NAT, IPS_DST_NAT = 1 << 4, 1 << 5

_NFGENMSG = struct.Struct("=BBH")


def _attributes(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(type, payload, the whole attribute as received) of each attribute."""
    for kind, start, end in walk_attributes(data, 0, len(data)):
        yield kind, data[start + 4 : end], data[start:end]


def _nested(data: bytes) -> dict[int, bytes]:
    return {kind: payload for kind, payload, _ in _attributes(data)}


class _Ctnetlink:
    def __init__(self) -> None:
        self.netlink = NetlinkSocket(NETLINK_NETFILTER)

    def close(self) -> None:
        self.netlink.close()

    def _exchange(self, msg_type: int, flags: int, family: int, payload: bytes) -> list[bytes]:
        """Bodies (after nfgenmsg) of the replies to one request."""
        body = _NFGENMSG.pack(family, 0, 0) + payload
        kind = (NFNL_SUBSYS_CTNETLINK << 8) | msg_type
        replies = self.netlink.exchange(kind, flags, body)
        return [data[offset + _NFGENMSG.size : end] for _, data, offset, end in replies]

    def dump(self, family: int) -> list[bytes]:
        return self._exchange(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, family, b"")

    def delete(self, family: int, attributes: bytes) -> None:
        try:
            self._exchange(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, family, attributes)
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
    selector = pad(attrs[CTA_TUPLE_ORIG][1])
    if CTA_ZONE in attrs:
        selector += pad(attrs[CTA_ZONE][1])
    return selector


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

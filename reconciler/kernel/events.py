"""Kernel change notifications: rtnetlink multicast groups, per network namespace.

`cnm watch` only needs to know *that* something changed in a namespace, and
where, to re-read that namespace (see `kernel/live.py`); the messages are
not decoded. Subscriptions are raw `AF_NETLINK` sockets bound to the link,
address and route groups: one in the host namespace, one in each named
namespace of an owned sandbox (opened inside it with `netns.entered`, a
socket stays in the namespace it was created in).

A socket pins its namespace: a namespace removed by name lives on while a
socket is open in it. So `release()` must be called before cnm removes a
sandbox's namespace, and `follow()` drops the sockets of namespaces that are
gone. When the kernel drops notifications (the socket buffer overflowed,
ENOBUFS), the namespace is reported as changed, which makes the caller read
it whole: nothing is lost, only read again.

Read-only: subscribing changes nothing in the kernel.
"""

from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import struct
from collections.abc import Iterable

from reconciler.kernel import netns
from reconciler.kernel.rtnl import Address, Link

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
#: Everything observation reads: links, addresses and (default) routes of both families.
GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE \
    | RTMGRP_IPV6_ROUTE

RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = 20, 21, 24, 25
RT_SCOPE_UNIVERSE = 0
#: Main table, or "look at RTA_TABLE" (tables above 255): where observed default routes live.
_ROUTE_TABLES = (254, 252)
_NLMSGHDR = struct.Struct("=IHHII")

_SO_RCVBUFFORCE = 33
_RCVBUF = 4 << 20
_RECV_CHUNK = 1 << 16

#: Namespace of an event: None for the host namespace, else the netns name.
Namespace = str | None


def relevant(data: bytes, host: bool) -> bool:
    """True if a batch of notifications may change what observation reads.

    Observation ignores link-local and host-scope addresses, every route but
    the default routes of the main table, and (in the host namespace) routes
    altogether; the kernel sends those by itself (IPv6 autoconfiguration,
    duplicate address detection), so they are dropped here rather than
    triggering a read. Anything not understood counts as relevant.
    """
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind = _NLMSGHDR.unpack_from(data, offset)[:2]
        if length < _NLMSGHDR.size:
            return True
        body = offset + _NLMSGHDR.size
        if kind in (RTM_NEWADDR, RTM_DELADDR):
            if body + 4 > len(data) or data[body + 3] == RT_SCOPE_UNIVERSE:
                return True
        elif kind in (RTM_NEWROUTE, RTM_DELROUTE):
            if body + 5 > len(data):
                return True
            if not host and data[body + 1] == 0 and data[body + 4] in _ROUTE_TABLES:
                return True
        else:
            return True
        offset += (length + 3) & ~3
    return False


def _subscribe(namespace: Namespace) -> socket.socket:
    with netns.entered(namespace):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                             | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        try:  # a big buffer: an apply of many objects sends bursts of notifications
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.bind((0, GROUPS))
    except BaseException:
        sock.close()
        raise
    return sock


class KernelEvents:
    """Netlink subscriptions registered with a selector; `drain()` says which namespace changed.

    Selector keys registered here carry `data == ("kernel", namespace)`. With a
    `host_table`, the host's notifications are applied to it as they are read
    (a lost one invalidates it, so that it is dumped again).
    """

    def __init__(self, selector: selectors.BaseSelector,
                 host_table: HostTable | None = None) -> None:
        self._selector = selector
        self._host_table = host_table
        self._sockets: dict[Namespace, socket.socket] = {}
        self._add(None)

    def _add(self, namespace: Namespace) -> None:
        sock = _subscribe(namespace)
        self._sockets[namespace] = sock
        self._selector.register(sock, selectors.EVENT_READ, ("kernel", namespace))

    @property
    def namespaces(self) -> set[str]:
        """Named namespaces currently followed."""
        return {n for n in self._sockets if n is not None}

    def follow(self, names: Iterable[str]) -> set[str]:
        """Follow exactly `names` (plus the host); returns the newly followed ones.

        A namespace that cannot be entered (removed meanwhile) is skipped; the
        caller sees it vanish from /run/netns.
        """
        wanted = set(names)
        for gone in self.namespaces - wanted:
            self.release(gone)
        added: set[str] = set()
        for name in sorted(wanted - self.namespaces):
            try:
                self._add(name)
            except OSError:
                continue
            added.add(name)
        return added

    def release(self, name: str) -> None:
        """Stop following `name` (call before removing that namespace: sockets pin it)."""
        sock = self._sockets.pop(name, None)
        if sock is not None:
            self._selector.unregister(sock)
            sock.close()

    def drain(self, namespace: Namespace) -> bool:
        """Read every pending notification of `namespace`; True if there was any (or a loss)."""
        sock = self._sockets.get(namespace)
        if sock is None:
            return False
        changed = False
        while True:
            try:
                data = sock.recv(_RECV_CHUNK)
            except BlockingIOError:
                return changed
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # notifications were dropped: read it all again
                    changed = True
                    if namespace is None and self._host_table is not None:
                        self._host_table.valid = False
                    continue
                raise
            if not data:
                return changed
            if namespace is None and self._host_table is not None:
                changed = self._host_table.feed(data) or changed
            else:
                changed = changed or relevant(data, namespace is None)

    def drain_all(self) -> set[Namespace]:
        """Drain every socket without waiting; the namespaces that had notifications."""
        return {ns for ns in list(self._sockets) if self.drain(ns)}

    def close(self) -> None:
        for name in list(self._sockets):
            sock = self._sockets.pop(name)
            self._selector.unregister(sock)
            sock.close()


# --- the host's links and addresses, kept from notifications ---

RTM_NEWLINK, RTM_DELLINK = 16, 17
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_NLATTR = struct.Struct("=HH")
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_GROUP = 18, 20, 27
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2


def _attrs(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while offset + 4 <= end:
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < 4:
            break
        found.setdefault(kind & 0x3FFF, data[offset + 4: offset + length])
        offset += (length + 3) & ~3
    return found


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _u32(value: bytes) -> int:
    return int(struct.unpack_from("=I", value)[0])


def parse_link(data: bytes, offset: int, end: int) -> Link:
    """An RTM_NEWLINK message body as `rtnl.Link` (the fields observation reads)."""
    _, _, index, flags, _ = _IFINFOMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + _IFINFOMSG.size, end)
    info = _attrs(attrs[IFLA_LINKINFO], 0, len(attrs[IFLA_LINKINFO])) \
        if IFLA_LINKINFO in attrs else {}
    mac = attrs.get(IFLA_ADDRESS)
    return Link(
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


def parse_address(data: bytes, offset: int, end: int) -> Address | None:
    family, prefixlen, _flags, scope, index = _IFADDRMSG.unpack_from(data, offset)
    attrs = _attrs(data, offset + _IFADDRMSG.size, end)
    raw = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
    if raw is None:
        return None
    address = ipaddress.ip_address(raw)
    return Address(index, address.version, prefixlen, scope, str(address))


class HostTable:
    """The host namespace's links and addresses, as a dump gives them, kept from notifications.

    `load()` takes a full dump; `feed()` applies notifications in the order
    received, which always ends in the kernel's latest state (each change sends
    its own notification after any older one). It offers `links()` and
    `addresses()` like a dump reader, so observation's own code reads it.

    One change is not announced by the kernel: a new alias (or group) of a link
    that is down. Such a link shows its old label until the next full dump
    (`cnm watch --resync`); apply re-reads every link it touches, so this can
    delay a plan, never make cnm change a link it does not own.
    """

    def __init__(self) -> None:
        self._links: dict[int, Link] = {}
        self._addresses: dict[tuple[int, int, int, str], Address] = {}
        self.valid = False

    def load(self, links: list[Link], addresses: list[Address]) -> None:
        self._links = {link.index: link for link in links}
        self._addresses = {(a.index, a.version, a.prefixlen, a.address): a for a in addresses}
        self.valid = True

    def feed(self, data: bytes) -> bool:
        """Apply a batch of notifications; True if observation could see a difference."""
        changed = False
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind = _NLMSGHDR.unpack_from(data, offset)[:2]
            if length < _NLMSGHDR.size:
                self.valid = False
                return True
            body, end = offset + _NLMSGHDR.size, offset + length
            if kind in (RTM_NEWLINK, RTM_DELLINK) and data[body] != socket.AF_UNSPEC:
                pass  # the bridge's port notices (AF_BRIDGE): a partial view of the same link
            elif kind == RTM_NEWLINK:
                link = parse_link(data, body, end)
                changed = changed or self._links.get(link.index) != link
                self._links[link.index] = link
            elif kind == RTM_DELLINK:
                index = _IFINFOMSG.unpack_from(data, body)[2]
                changed = changed or index in self._links
                self._links.pop(index, None)
                for key in [k for k in self._addresses if k[0] == index]:
                    del self._addresses[key]
            elif kind in (RTM_NEWADDR, RTM_DELADDR):
                address = parse_address(data, body, end)
                if address is not None:
                    key = (address.index, address.version, address.prefixlen, address.address)
                    if kind == RTM_NEWADDR:
                        self._addresses[key] = address
                    else:
                        self._addresses.pop(key, None)
                    changed = changed or (address.scope == RT_SCOPE_UNIVERSE
                                          and not ipaddress.ip_address(address.address)
                                          .is_link_local)
            offset += (length + 3) & ~3
        return changed

    def links(self) -> list[Link]:
        return [self._links[i] for i in sorted(self._links)]

    def addresses(self) -> list[Address]:
        return list(self._addresses.values())

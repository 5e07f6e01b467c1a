"""Kernel change notifications: rtnetlink multicast groups, per network namespace.

`cnm watch` only needs to know *that* something changed in a namespace, and
where, to re-read that namespace (see `kernel/live.py`); the messages are
not decoded. Subscriptions are netlink sockets (`netlink.open_socket`) bound
to the link, address and route groups: one in the host namespace, one in
each named namespace of an owned sandbox (a socket stays in the namespace it
was created in).

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
import selectors
import socket
from collections.abc import Iterable

from reconciler.kernel.brport import AF_BRIDGE, decode_port
from reconciler.kernel.netlink import (
    HEADER,
    NETLINK_NETFILTER,
    NETLINK_ROUTE,
    open_socket,
    pick_attributes,
    text,
)
from reconciler.kernel.rtnl import (
    IFF_UP,
    IFINFOMSG,
    IFLA_IFNAME,
    RT_TABLE_MAIN,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    Address,
    Link,
    Route,
    decode_address,
    decode_link,
    decode_route,
)

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
#: Everything observation reads: links, addresses and (default) routes of both families.
GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE \
    | RTMGRP_IPV6_ROUTE

RT_SCOPE_UNIVERSE = 0
#: Main table, or "look at RTA_TABLE" (tables above 255): where observed default routes live.
_ROUTE_TABLES = (254, 252)

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
    while offset + HEADER.size <= len(data):
        length, kind = HEADER.unpack_from(data, offset)[:2]
        if length < HEADER.size:
            return True
        body = offset + HEADER.size
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
    sock = open_socket(NETLINK_ROUTE, namespace, groups=GROUPS, nonblocking=True)
    try:
        try:  # a big buffer: an apply of many objects sends bursts of notifications
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
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
        #: readable when anyone changes nftables (key data: ("nftables", None))
        self._nft = subscribe_nftables()
        if self._nft is not None:
            selector.register(self._nft, selectors.EVENT_READ, ("nftables", None))

    def drain_nftables(self) -> bool:
        """Discard pending nftables notices; True if there were any (or some were lost)."""
        changed = False
        while self._nft is not None:
            try:
                if not self._nft.recv(_RECV_CHUNK):
                    break
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
            changed = True
        return changed

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
        """Drain every socket without waiting; the namespaces that had notifications.

        Only the sockets the selector finds readable (or in error: a lost
        notification) are read: with a thousand sandboxes followed, trying each
        one cost a thousand system calls per observation. The selector is
        level-triggered, so the other keys it reports stay for the caller's loop."""
        ready = [key.data[1] for key, _ in self._selector.select(0)
                 if key.data[0] == "kernel"]
        return {ns for ns in ready if self.drain(ns)}

    def close(self) -> None:
        for name in list(self._sockets):
            sock = self._sockets.pop(name)
            self._selector.unregister(sock)
            sock.close()
        if self._nft is not None:
            self._selector.unregister(self._nft)
            self._nft.close()
            self._nft = None


# --- the host's links, addresses, routes and bridge ports, kept from notifications ---


#: (version, dst, dst_len, table, oif, gateway): a route, as far as observation tells them apart
RouteKey = tuple[int, str | None, int, int, int | None, str | None]


def parse_address(data: bytes, offset: int, end: int) -> Address | None:
    """An RTM_NEWADDR/DELADDR body as `rtnl.Address` (as `Rtnl.addresses()` decodes it)."""
    return decode_address(data, offset, end)


def parse_route(data: bytes, offset: int, end: int) -> tuple[RouteKey, Route]:
    """An RTM_NEWROUTE/DELROUTE body as `rtnl.Route`, with the key that identifies it."""
    route = decode_route(data, offset, end)
    return _route_key(route), route


def _route_key(route: Route) -> RouteKey:
    return (route.version, route.dst, route.dst_len, route.table, route.oif, route.gateway)


def _kept(route: Route) -> bool:
    """The routes host observation reads: main table, not default routes."""
    return route.table == RT_TABLE_MAIN and route.dst_len > 0


class HostTable:
    """The host namespace as observation reads it, kept from notifications.

    `load()` takes full dumps; `feed()` applies notifications in the order
    received, which always ends in the kernel's latest state (each change sends
    its own notification after any older one). It offers `links()`,
    `addresses()` and `routes()` like an `Rtnl` socket, and `ports()` like
    `brport.hairpin_ports()`, so observation's own code reads it.

    Changes the kernel makes without announcing them are applied here by rule:
    the routes of a deleted link go with it, and IPv4 routes through a link
    that goes down are flushed. One change is not announced at all: a new
    alias (or group) of a link that is down; such a link shows its old label
    until the next full dump (`cnm watch --resync`). Apply re-reads every link
    it touches, so this can delay a plan, never make cnm change a link it does
    not own.
    """

    def __init__(self) -> None:
        self._links: dict[int, Link] = {}
        self._addresses: dict[tuple[int, int, int, str], Address] = {}
        self._routes: dict[RouteKey, Route] = {}
        self._ports: dict[str, tuple[int, bool]] = {}
        self.valid = False

    def load(self, links: list[Link], addresses: list[Address], routes: list[Route],
             ports: dict[str, tuple[int, bool]]) -> None:
        self._links = {link.index: link for link in links}
        self._addresses = {(a.index, a.version, a.prefixlen, a.address): a for a in addresses}
        self._routes = {_route_key(r): r for r in routes if _kept(r)}
        self._ports = dict(ports)
        self.valid = True

    def feed(self, data: bytes) -> bool:
        """Apply a batch of notifications; True if observation could see a difference."""
        changed = False
        offset = 0
        while offset + HEADER.size <= len(data):
            length, kind = HEADER.unpack_from(data, offset)[:2]
            if length < HEADER.size:
                self.valid = False
                return True
            message = data[offset: offset + length]
            offset += (length + 3) & ~3
            if kind in (RTM_NEWLINK, RTM_DELLINK):
                changed = self._link_notice(kind, message) or changed
            elif kind in (RTM_NEWADDR, RTM_DELADDR):
                address = parse_address(message, HEADER.size, len(message))
                if address is None:
                    continue
                key = (address.index, address.version, address.prefixlen, address.address)
                if kind == RTM_NEWADDR:
                    self._addresses[key] = address
                else:
                    self._addresses.pop(key, None)
                changed = changed or address.scope == RT_SCOPE_UNIVERSE
            elif kind in (RTM_NEWROUTE, RTM_DELROUTE):
                route_key, route = parse_route(message, HEADER.size, len(message))
                if not _kept(route):
                    continue
                if kind == RTM_NEWROUTE:
                    self._routes[route_key] = route
                else:
                    self._routes.pop(route_key, None)
                changed = True
        return changed

    def _link_notice(self, kind: int, message: bytes) -> bool:
        body = HEADER.size
        family, _, index, flags, _ = IFINFOMSG.unpack_from(message, body)
        if family == AF_BRIDGE:  # a bridge port's notice: its hairpin flag
            decoded = decode_port(message, body, len(message)) if kind == RTM_NEWLINK else None
            if decoded is None:
                attrs = pick_attributes(message, body + IFINFOMSG.size, len(message),
                                        (IFLA_IFNAME,))
                return self._ports.pop(text(attrs.get(IFLA_IFNAME, b"")), None) is not None
            name, _, hairpin = decoded
            port = (index, hairpin)
            old_port, self._ports[name] = self._ports.get(name), port
            return old_port != port
        if kind == RTM_DELLINK:
            gone = self._links.pop(index, None)
            self._addresses = {k: a for k, a in self._addresses.items() if k[0] != index}
            self._routes = {k: r for k, r in self._routes.items() if r.oif != index}
            if gone is not None:
                self._ports.pop(gone.name, None)
            return gone is not None
        link = decode_link(message, body, len(message))
        if not flags & IFF_UP:  # IPv4 flushes routes through a link that goes down, silently
            self._routes = {k: r for k, r in self._routes.items()
                            if not (r.oif == index and r.version == 4)}
        before, self._links[index] = self._links.get(index), link
        return before != link

    # --- read like a dump ---

    def links(self) -> list[Link]:
        return [self._links[i] for i in sorted(self._links)]

    def addresses(self) -> list[Address]:
        return list(self._addresses.values())

    def routes(self, table: int | None = None) -> list[Route]:
        return [r for r in self._routes.values() if table is None or r.table == table]

    def ports(self) -> dict[str, tuple[int, bool]]:
        return dict(self._ports)


# --- nftables changes (anyone's), as a trigger to read cnm's tables again ---

NFNLGRP_NFTABLES = 7


def subscribe_nftables() -> socket.socket | None:
    """A socket that becomes readable when any nftables table changes (None if unavailable)."""
    try:
        return open_socket(NETLINK_NETFILTER, groups=1 << (NFNLGRP_NFTABLES - 1),
                           nonblocking=True)
    except OSError:
        return None

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
import selectors
import socket
import struct
from collections.abc import Iterable

from reconciler.kernel import netns

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

    Selector keys registered here carry `data == ("kernel", namespace)`.
    """

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self._selector = selector
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
                    continue
                raise
            if not data:
                return changed
            changed = changed or relevant(data, namespace is None)

    def drain_all(self) -> set[Namespace]:
        """Drain every socket without waiting; the namespaces that had notifications."""
        return {ns for ns in list(self._sockets) if self.drain(ns)}

    def close(self) -> None:
        for name in list(self._sockets):
            sock = self._sockets.pop(name)
            self._selector.unregister(sock)
            sock.close()

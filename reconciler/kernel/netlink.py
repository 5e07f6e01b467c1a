"""Netlink itself: the message and attribute codec, sockets, and one request/reply exchange.

Every conversation cnm has with the kernel over netlink goes through here:
rtnetlink (`rtnl.py`, `brport.py`), ctnetlink (`conntrack.py`) and the
multicast subscriptions of `events.py`. This is the only module that opens
an `AF_NETLINK` socket (a test keeps it so).

`NetlinkSocket.request_all()` sends many changes in few datagrams (the overlay
driver's forwarding and neighbour entries: hundreds per network) and waits for
each one's acknowledgement.

`NetlinkSocket.exchange()` sends one request and returns its replies once the
kernel has said it is done. It checks that every reply carries the request's
sequence number and this socket's port id (anything else is an error, except
replies to an earlier request that was abandoned by an exception, which are
dropped and counted), raises `OSError(errno)` for an error reply, and reads
a dump again when the kernel marks it interrupted (NLM_F_DUMP_INTR: the table
changed while it was being read, so the parts may miss or repeat entries).

Decoding is lazy by design: replies are handed back as (type, message,
payload offset, end), and callers pick only the attributes they read
(`pick_attributes`), which is most of the user-space cost of observing a
thousand namespaces. Each message is copied out of its datagram on purpose:
inside a short message, attribute offsets stay small integers, which Python
keeps cached; decoding in place in the 32 KiB datagram measured ~3% more
instructions on a 3000-link dump (valgrind, see docs/performance.md).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable, Collection, Iterator

from reconciler.errors import KernelError
from reconciler.kernel import netns

NETLINK_ROUTE, NETLINK_NETFILTER = 0, 12
SOL_NETLINK, NETLINK_GET_STRICT_CHK = 270, 12

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP_INTR = 0x1, 0x2, 0x4, 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED, NLA_TYPE_MASK = 0x8000, 0x3FFF

HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
ATTRIBUTE = struct.Struct("=HH")  # nlattr: length, type
_U32 = struct.Struct("=I")
_ERRNO = struct.Struct("=i")

#: How often a dump is read again while the kernel keeps marking it interrupted. Each
#: read takes a few milliseconds even for thousands of links, so only a table that
#: changes without pause exhausts this.
DUMP_ATTEMPTS = 10

#: One receive buffer per thread, shared by its sockets: `recv(1 MiB)` would allocate
#: (and fault in) a fresh megabyte per call, which cost more than the kernel's whole
#: dump of a small namespace. Replies are copied out at their real size.
_RECV_BUFFER = 1 << 20
_buffers = threading.local()

#: Requests per datagram of `request_all`: every one is acknowledged by a datagram of its
#: own, and the acknowledgements queue up (about 1 KiB of receive buffer each, in the
#: kernel's accounting) before the first is read; 64 stay far below the default 208 KiB.
BATCH_REQUESTS = 64

#: A reply: (message type, the message, offset of its payload (16), its end (its length)).
Reply = tuple[int, bytes, int, int]


class DumpInterrupted(KernelError):
    """The kernel marked every attempt of a dump interrupted: its table kept changing."""

    def __init__(self, msg_type: int, attempts: int) -> None:
        super().__init__(
            f"netlink dump (message type {msg_type}) interrupted by concurrent changes "
            f"{attempts} times in a row (NLM_F_DUMP_INTR); try again", retryable=True)


class ProtocolError(KernelError):
    """A reply that belongs to no request of this socket: a bug, never to be guessed around."""


# --- codec ------------------------------------------------------------------


def messages(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, flags, offset, end) of each message in a datagram; stops at a malformed header."""
    offset = 0
    size = len(data)
    while offset + 16 <= size:
        length, kind, flags = HEADER.unpack_from(data, offset)[:3]
        if length < 16 or offset + length > size:
            return
        yield kind, flags, offset, offset + length
        offset += (length + 3) & ~3


def pick_attributes(
    data: bytes, offset: int, end: int, wanted: Collection[int]
) -> dict[int, bytes]:
    """The payloads of the attributes of kinds in `wanted` (a link carries ~40; observation
    reads 9). A later attribute of the same kind replaces an earlier one.

    A plain loop that slices only what is kept: at a thousand namespaces, this
    is most of the user-space cost of a links dump.
    """
    found: dict[int, bytes] = {}
    unpack = ATTRIBUTE.unpack_from
    while offset + 4 <= end:
        length, kind = unpack(data, offset)
        if length < 4:
            break
        kind &= 0x3FFF  # NLA_TYPE_MASK, spelled out: a global lookup per attribute costs ~8%
        if kind in wanted:
            found[kind] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def nested(payload: bytes, wanted: Collection[int]) -> dict[int, bytes]:
    """`pick_attributes` over the whole payload of a nested attribute."""
    return pick_attributes(payload, 0, len(payload), wanted)


def walk_attributes(data: bytes, offset: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, start, end) of each attribute, the header included in start..end (so that an
    attribute can be sent back as received)."""
    while offset + 4 <= end:
        length, kind = ATTRIBUTE.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            return
        yield kind & NLA_TYPE_MASK, offset, offset + length
        offset += (length + 3) & ~3


def u32(value: bytes) -> int:
    return int(_U32.unpack_from(value)[0])


def text(value: bytes) -> str:
    """A NUL-terminated string attribute (undecodable bytes replaced)."""
    return value.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def pad(data: bytes) -> bytes:
    """`data` padded to netlink's 4-byte alignment."""
    return data + b"\0" * (-len(data) % 4)


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded. A nest is an attribute whose payload is attributes."""
    return pad(ATTRIBUTE.pack(4 + len(payload), kind) + payload)


def u32_attr(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def str_attr(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def message(msg_type: int, flags: int, seq: int, body: bytes, port: int = 0) -> bytes:
    return HEADER.pack(HEADER.size + len(body), msg_type, flags, seq, port) + body


def error_code(data: bytes, offset: int) -> int:
    """The errno of an NLMSG_ERROR payload at `offset` (0: an acknowledgement)."""
    return -int(_ERRNO.unpack_from(data, offset)[0])


# --- sockets ----------------------------------------------------------------


def receive(sock: socket.socket) -> bytes:
    """The next datagram of a netlink socket, through this thread's reused buffer."""
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = bytearray(_RECV_BUFFER)
    size = sock.recv_into(buffer)
    return bytes(memoryview(buffer)[:size])


def open_socket(protocol: int, namespace: str | None = None, *, groups: int = 0,
                nonblocking: bool = False) -> socket.socket:
    """A raw netlink socket of `protocol` in netns `namespace` (None: the current one),
    bound to a kernel-chosen port id and to the multicast `groups`. A socket stays in
    the namespace it was created in."""
    kind = socket.SOCK_RAW | socket.SOCK_CLOEXEC | (socket.SOCK_NONBLOCK if nonblocking else 0)
    with netns.entered(namespace):
        sock = socket.socket(socket.AF_NETLINK, kind, protocol)
    try:
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


class NetlinkSocket:
    """One request socket: `exchange()` a request for its replies.

    `interrupted_dumps` counts the dump attempts the kernel marked interrupted
    (each was read again), `stale_replies` the replies of abandoned exchanges
    that were dropped: both for tests and diagnostics.
    """

    def __init__(self, protocol: int, namespace: str | None = None, *,
                 strict: bool = False, sock: socket.socket | None = None) -> None:
        """A socket of `protocol` in netns `namespace`; `sock`: one already bound to use
        instead (the unit tests pass a scripted stand-in)."""
        self.sock = open_socket(protocol, namespace) if sock is None else sock
        try:
            if strict:  # the kernel checks requests strictly and may filter dumps by them
                self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            self.port: int = self.sock.getsockname()[0]
        except BaseException:
            self.sock.close()
            raise
        self._seq = 0
        self._abandoned: set[int] = set()
        self.interrupted_dumps = 0
        self.stale_replies = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exchange(self, msg_type: int, flags: int, body: bytes) -> list[Reply]:
        """Send a request and return its replies (the final DONE or acknowledgement left out).

        `flags` must include NLM_F_REQUEST. A dump (NLM_F_DUMP) ends with DONE, a
        request with NLM_F_ACK with its acknowledgement; any other request with its
        first reply. An error reply raises OSError(errno). A dump the kernel marks
        interrupted is read again, up to DUMP_ATTEMPTS times (then DumpInterrupted).
        """
        if flags & NLM_F_DUMP != NLM_F_DUMP:
            return self._once(msg_type, flags, body)[0]
        for _ in range(DUMP_ATTEMPTS):
            replies, interrupted = self._once(msg_type, flags, body)
            if not interrupted:
                return replies
            self.interrupted_dumps += 1
        raise DumpInterrupted(msg_type, DUMP_ATTEMPTS)

    def request_all(self, requests: Collection[tuple[int, int, bytes]]) -> None:
        """Send changes (type, flags, body) that each want an acknowledgement, up to
        `BATCH_REQUESTS` in one datagram, and wait for every acknowledgement.

        The kernel handles each message of a datagram in turn, whatever happened to
        the ones before, so the batch is all tried; the first error reply raises
        OSError(errno) once the datagram's acknowledgements are all read.
        """
        pending = list(requests)
        for start in range(0, len(pending), BATCH_REQUESTS):
            waiting: set[int] = set()
            datagram = b""
            for msg_type, flags, body in pending[start:start + BATCH_REQUESTS]:
                self._seq = seq = self._seq % 0xFFFFFFFF + 1
                waiting.add(seq)
                datagram += message(msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, body)
            self.sock.send(datagram)
            failure = self._acknowledged(waiting)
            if failure:
                raise OSError(failure, os.strerror(failure))

    def _acknowledged(self, waiting: set[int]) -> int:
        """Read until every sequence of `waiting` is acknowledged; the first error's errno."""
        failure = 0
        try:
            replies = self._replies(waiting.__contains__, f"a batch of port id {self.port}")
            for kind, _flags, seq, data, offset, _length in replies:
                if kind != NLMSG_ERROR:
                    raise ProtocolError(f"netlink reply of type {kind} with sequence {seq} "
                                        f"to a batch of port id {self.port}")
                waiting.discard(seq)
                failure = failure or error_code(data, offset + 16)
                if not waiting:
                    break
        finally:
            self._abandoned |= waiting  # unread acknowledgements: recognise and drop them
        return failure

    def _replies(self, wanted: Callable[[int], bool], asked: str
                 ) -> Iterator[tuple[int, int, int, bytes, int, int]]:
        """(type, flags, sequence, datagram, offset, length) of each reply this socket
        receives for a sequence `wanted` accepts, read datagram by datagram for as long
        as the caller takes them. A late reply to an abandoned request is dropped (and
        counted); any other reply is a ProtocolError naming what was `asked`."""
        while True:
            data = receive(self.sock)
            offset, size = 0, len(data)
            while offset + 16 <= size:
                length, kind, flags, seq, port = HEADER.unpack_from(data, offset)
                if length < 16 or offset + length > size:
                    raise ProtocolError(f"malformed netlink reply (length {length})")
                if port == self.port and wanted(seq):
                    yield kind, flags, seq, data, offset, length
                elif port == self.port and seq in self._abandoned:
                    self.stale_replies += 1
                else:
                    raise ProtocolError(f"netlink reply with sequence {seq} and port id "
                                        f"{port} to {asked}")
                offset += (length + 3) & ~3

    def _once(self, msg_type: int, flags: int, body: bytes) -> tuple[list[Reply], bool]:
        self._seq = seq = self._seq % 0xFFFFFFFF + 1
        self.sock.send(message(msg_type, flags, seq, body))
        ends_with_done = flags & NLM_F_DUMP == NLM_F_DUMP
        ends_with_ack = not ends_with_done and flags & NLM_F_ACK
        replies: list[Reply] = []
        seen_flags = 0  # every reply's flags, or-ed: NLM_F_DUMP_INTR may mark any part
        finished = False
        try:
            incoming = self._replies(seq.__eq__, f"request {seq} of port id {self.port}")
            while True:
                kind, reply_flags, _seq, data, offset, length = next(incoming)
                seen_flags |= reply_flags
                if kind == NLMSG_ERROR:
                    code = error_code(data, offset + 16)
                    finished = True
                    if code:
                        raise OSError(code, os.strerror(code))
                    return replies, bool(seen_flags & NLM_F_DUMP_INTR)
                if kind == NLMSG_DONE:
                    finished = True
                    return replies, bool(seen_flags & NLM_F_DUMP_INTR)
                replies.append((kind, data[offset : offset + length], 16, length))
                if not ends_with_done and not ends_with_ack:
                    finished = True
                    return replies, False
        finally:
            if not finished:  # its remaining replies may still come: recognise and drop them
                self._abandoned.add(seq)

"""`NetlinkSocket.request_all()` against a scripted socket: many changes per datagram, every
acknowledgement awaited, errors and strays as `exchange()` treats them. The real kernel
runs the same batches in tests/kernel/test_vxlan_codec.py."""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable

import pytest

from reconciler.kernel.netlink import (
    BATCH_REQUESTS,
    NETLINK_ROUTE,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NetlinkSocket,
    ProtocolError,
)

PORT = 4242
RTM_NEWNEIGH = 28
HEADER = struct.Struct("=IHHII")


def ack(seq: int, code: int = 0, port: int = PORT) -> bytes:
    return HEADER.pack(36, NLMSG_ERROR, 0, seq, port) + struct.pack("=i", -code) + b"\0" * 16


def messages(datagram: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, sequence, body) of each message of a datagram."""
    found, offset = [], 0
    while offset < len(datagram):
        length, kind, flags, seq, _port = HEADER.unpack_from(datagram, offset)
        found.append((kind, flags, seq, datagram[offset + 16:offset + length]))
        offset += (length + 3) & ~3
    return found


class BatchKernel:
    """Answers each message of a datagram with an acknowledgement datagram of its own, as
    the kernel does; `answer` may change what a message gets."""

    def __init__(self, answer: Callable[[int, bytes], list[bytes]] | None = None) -> None:
        self.answer = answer or (lambda seq, body: [ack(seq)])
        self.sent: list[bytes] = []
        self.pending: list[bytes] = []

    def getsockname(self) -> tuple[int, int]:
        return (PORT, 0)

    def setsockopt(self, *args: object) -> None:
        pass

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        for _kind, _flags, seq, body in messages(data):
            self.pending.extend(self.answer(seq, body))
        return len(data)

    def recv_into(self, buffer: bytearray) -> int:
        if not self.pending:
            raise AssertionError("waits for an acknowledgement the kernel never sends")
        data = self.pending.pop(0)
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        pass


def _socket(kernel: BatchKernel) -> NetlinkSocket:
    return NetlinkSocket(NETLINK_ROUTE, sock=kernel)  # type: ignore[arg-type]


def _requests(count: int) -> list[tuple[int, int, bytes]]:
    return [(RTM_NEWNEIGH, NLM_F_CREATE, struct.pack("=I", i)) for i in range(count)]


@pytest.mark.parametrize("count", [0, 1, BATCH_REQUESTS, BATCH_REQUESTS + 1, 300])
def test_changes_go_in_datagrams_of_batch_requests_each_acknowledged(count: int) -> None:
    kernel = BatchKernel()
    _socket(kernel).request_all(_requests(count))
    sent = [messages(d) for d in kernel.sent]
    assert [len(m) for m in sent] == [min(BATCH_REQUESTS, count - start)
                                      for start in range(0, count, BATCH_REQUESTS)]
    flat = [m for datagram in sent for m in datagram]
    assert [body for *_, body in flat] == [body for *_, body in _requests(count)]  # in order
    assert [seq for _, _, seq, _ in flat] == list(range(1, count + 1))
    assert all(kind == RTM_NEWNEIGH and flags == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
               for kind, flags, _, _ in flat)
    assert not kernel.pending  # every acknowledgement read


def test_acknowledgements_packed_in_one_datagram_are_all_read() -> None:
    kernel = BatchKernel()
    sock = _socket(kernel)
    kernel.answer = lambda seq, body: [ack(seq)] if seq % 2 else []
    original = kernel.send

    def send(data: bytes) -> int:  # even sequences answered together, at the end
        size = original(data)
        kernel.pending.append(b"".join(ack(seq) for _, _, seq, _ in messages(data)
                                       if seq % 2 == 0))
        return size

    kernel.send = send  # type: ignore[method-assign]
    sock.request_all(_requests(10))
    assert not kernel.pending


def test_an_error_raises_after_its_datagram_and_stops_the_batch() -> None:
    kernel = BatchKernel(lambda seq, body: [ack(seq, errno.ENOENT if seq == 5 else 0)])
    sock = _socket(kernel)
    with pytest.raises(OSError) as caught:
        sock.request_all(_requests(BATCH_REQUESTS + 10))
    assert caught.value.errno == errno.ENOENT
    assert len(kernel.sent) == 1 and not kernel.pending  # the rest of the datagram was read


def test_a_stray_reply_is_a_protocol_error_and_the_unread_are_dropped_later() -> None:
    kernel = BatchKernel(lambda seq, body: [ack(seq, port=PORT + 1 if seq == 2 else PORT)])
    sock = _socket(kernel)
    with pytest.raises(ProtocolError):
        sock.request_all(_requests(4))
    kernel.answer = lambda seq, body: [ack(seq)]
    sock.request_all(_requests(1))  # the batch's unread acknowledgements come first
    assert sock.stale_replies == 2 and not kernel.pending

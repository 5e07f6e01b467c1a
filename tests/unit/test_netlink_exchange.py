"""`NetlinkSocket.exchange()` against a scripted socket: what it accepts, refuses and retries.

The stand-in plays the kernel's side: each request it receives is answered by
a script with datagrams (built here with the same header layout the kernel
uses), so every rule of the exchange is checked without a kernel: replies must
carry the request's sequence number and the socket's port id, an error reply
raises its errno, a dump may span datagrams and ends with DONE, and a dump
marked interrupted is read again a bounded number of times.
"""

from __future__ import annotations

import errno
import struct
import threading
from collections.abc import Callable

import pytest

from reconciler.kernel import netlink
from reconciler.kernel.netlink import (
    NETLINK_ROUTE,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    DumpInterrupted,
    NetlinkSocket,
    ProtocolError,
)

PORT = 4242
RTM_NEWLINK, RTM_GETLINK = 16, 18
DUMP = NLM_F_REQUEST | NLM_F_DUMP
ACKED = NLM_F_REQUEST | NLM_F_ACK

#: (sequence number of the request, its bytes) -> the datagrams the "kernel" answers with
Script = Callable[[int, bytes], list[bytes]]


class ScriptedSocket:
    """Enough of a bound netlink socket for `NetlinkSocket`: send, recv_into, getsockname."""

    def __init__(self, script: Script, port: int = PORT) -> None:
        self.script = script
        self.port = port
        self.sent: list[bytes] = []
        self.pending: list[bytes] = []

    def getsockname(self) -> tuple[int, int]:
        return (self.port, 0)

    def setsockopt(self, *args: object) -> None:
        pass

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        seq = struct.unpack_from("=I", data, 8)[0]
        self.pending.extend(self.script(seq, data))
        return len(data)

    def recv_into(self, buffer: bytearray) -> int:
        if not self.pending:
            raise AssertionError("the exchange waits for a reply that the kernel never sends")
        data = self.pending.pop(0)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass

    @property
    def sequences(self) -> list[int]:
        return [struct.unpack_from("=I", d, 8)[0] for d in self.sent]


def msg(kind: int, seq: int, payload: bytes = b"", *, flags: int = NLM_F_MULTI,
        port: int = PORT) -> bytes:
    data = struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, port) + payload
    return data + b"\0" * (-len(data) % 4)


def link(seq: int, index: int, **kw: int) -> bytes:
    return msg(RTM_NEWLINK, seq, struct.pack("=BxHiII", 0, 0, index, 0, 0), **kw)


def done(seq: int, *, flags: int = NLM_F_MULTI, port: int = PORT) -> bytes:
    return msg(NLMSG_DONE, seq, struct.pack("=i", 0), flags=flags, port=port)


def error(seq: int, code: int, *, port: int = PORT) -> bytes:
    """An NLMSG_ERROR: -errno, then the request's header (0 is an acknowledgement)."""
    return msg(NLMSG_ERROR, seq, struct.pack("=i", -code) + b"\0" * 16, flags=0, port=port)


def indexes(replies: list[netlink.Reply]) -> list[int]:
    return [struct.unpack_from("=i", data, offset + 4)[0] for _, data, offset, _ in replies]


def socket_for(script: Script) -> tuple[NetlinkSocket, ScriptedSocket]:
    fake = ScriptedSocket(script)
    return NetlinkSocket(NETLINK_ROUTE, sock=fake), fake  # type: ignore[arg-type]


def test_a_dump_spans_datagrams_and_ends_with_done() -> None:
    sock, fake = socket_for(lambda seq, _: [link(seq, 1) + link(seq, 2), link(seq, 3),
                                            link(seq, 4) + done(seq)])
    replies = sock.exchange(RTM_GETLINK, DUMP, b"")
    assert indexes(replies) == [1, 2, 3, 4]
    assert all(kind == RTM_NEWLINK for kind, *_ in replies)
    assert sock.interrupted_dumps == 0 and fake.sequences == [1]
    # each reply is its message, the payload after the 16-byte header
    kind, data, offset, end = replies[1]
    assert (data, offset, end) == (link(1, 2), 16, 32)


def test_sequence_numbers_grow_and_the_request_is_sent_as_given() -> None:
    sock, fake = socket_for(lambda seq, _: [error(seq, 0)])
    sock.exchange(RTM_GETLINK, ACKED, b"\1\2\3\4")
    sock.exchange(RTM_GETLINK, ACKED, b"")
    assert fake.sequences == [1, 2]
    assert fake.sent[0] == struct.pack("=IHHII", 20, RTM_GETLINK, ACKED, 1, 0) + b"\1\2\3\4"


def test_an_acknowledged_request_returns_its_replies_before_the_ack() -> None:
    sock, _ = socket_for(lambda seq, _: [link(seq, 7, flags=0) + error(seq, 0)])
    assert indexes(sock.exchange(RTM_GETLINK, ACKED, b"")) == [7]
    sock, _ = socket_for(lambda seq, _: [error(seq, 0)])
    assert sock.exchange(RTM_NEWLINK, ACKED, b"") == []


def test_a_request_without_ack_or_dump_ends_with_its_first_reply() -> None:
    sock, fake = socket_for(lambda seq, _: [link(seq, 9, flags=0)])
    assert indexes(sock.exchange(RTM_GETLINK, NLM_F_REQUEST, b"")) == [9]
    assert fake.pending == []


@pytest.mark.parametrize("code", [errno.ENODEV, errno.EEXIST, errno.EPERM])
def test_an_error_reply_raises_its_errno(code: int) -> None:
    sock, _ = socket_for(lambda seq, _: [error(seq, code)])
    with pytest.raises(OSError) as raised:
        sock.exchange(RTM_NEWLINK, ACKED, b"")
    assert raised.value.errno == code  # OSError(errno), as the callers of exchange() expect


def test_an_error_ending_a_dump_raises_and_the_socket_goes_on() -> None:
    answers = iter([lambda seq: [link(seq, 1), error(seq, errno.EINVAL)],
                    lambda seq: [link(seq, 2) + done(seq)]])
    sock, _ = socket_for(lambda seq, _: next(answers)(seq))
    with pytest.raises(OSError) as raised:
        sock.exchange(RTM_GETLINK, DUMP, b"")
    assert raised.value.errno == errno.EINVAL
    assert indexes(sock.exchange(RTM_GETLINK, DUMP, b"")) == [2]


def test_a_reply_with_another_sequence_number_is_an_error() -> None:
    sock, _ = socket_for(lambda seq, _: [link(seq + 5, 1) + done(seq + 5)])
    with pytest.raises(ProtocolError, match="sequence 6"):
        sock.exchange(RTM_GETLINK, DUMP, b"")


def test_a_reply_from_another_port_id_is_an_error() -> None:
    sock, _ = socket_for(lambda seq, _: [link(seq, 1, port=PORT + 1) + done(seq)])
    with pytest.raises(ProtocolError, match=f"port id {PORT + 1}"):
        sock.exchange(RTM_GETLINK, DUMP, b"")
    # a kernel notification (port id 0) in the middle of a dump is no reply either
    sock, _ = socket_for(lambda seq, _: [link(seq, 1) + link(0, 2, port=0) + done(seq)])
    with pytest.raises(ProtocolError):
        sock.exchange(RTM_GETLINK, DUMP, b"")


def test_a_truncated_message_is_an_error() -> None:
    sock, _ = socket_for(lambda seq, _: [link(seq, 1)[:-4] + b"\0" * 2])
    with pytest.raises(ProtocolError, match="malformed"):
        sock.exchange(RTM_GETLINK, DUMP, b"")


def test_replies_to_an_abandoned_exchange_are_dropped_and_counted() -> None:
    """An exchange cut short by an exception (here: a reply from a foreign port) leaves
    the rest of its replies queued; the next exchange recognises and drops them."""
    answers = iter([
        lambda seq: [link(seq, 1, port=99), link(seq, 2) + done(seq)],
        lambda seq: [link(seq, 3) + done(seq)],
    ])
    sock, _ = socket_for(lambda seq, _: next(answers)(seq))
    with pytest.raises(ProtocolError):
        sock.exchange(RTM_GETLINK, DUMP, b"")
    assert indexes(sock.exchange(RTM_GETLINK, DUMP, b"")) == [3]
    assert sock.stale_replies == 2  # link 2 and the first DONE


@pytest.mark.parametrize("where", ["first part", "last part", "done"])
def test_an_interrupted_dump_is_read_again(where: str) -> None:
    def answer(seq: int, _: bytes) -> list[bytes]:
        intr = NLM_F_MULTI | NLM_F_DUMP_INTR if seq == 1 else NLM_F_MULTI
        if seq == 1:  # the table changed meanwhile: link 2 is missing from this attempt
            return [link(seq, 1, flags=intr if where == "first part" else NLM_F_MULTI),
                    link(seq, 3, flags=intr if where == "last part" else NLM_F_MULTI)
                    + done(seq, flags=intr if where == "done" else NLM_F_MULTI)]
        return [link(seq, 1) + link(seq, 2), link(seq, 3) + done(seq)]

    sock, fake = socket_for(answer)
    assert indexes(sock.exchange(RTM_GETLINK, DUMP, b"")) == [1, 2, 3]
    assert sock.interrupted_dumps == 1 and fake.sequences == [1, 2]


def test_a_dump_interrupted_every_time_gives_up_with_a_temporary_error() -> None:
    sock, fake = socket_for(lambda seq, _: [link(seq, 1, flags=NLM_F_MULTI | NLM_F_DUMP_INTR)
                                            + done(seq)])
    with pytest.raises(DumpInterrupted) as raised:
        sock.exchange(RTM_GETLINK, DUMP, b"")
    assert raised.value.retryable and "NLM_F_DUMP_INTR" in str(raised.value)
    assert len(fake.sent) == netlink.DUMP_ATTEMPTS == sock.interrupted_dumps
    assert fake.pending == []  # every attempt was read to its end


def test_the_interrupted_flag_means_nothing_outside_a_dump() -> None:
    sock, fake = socket_for(lambda seq, _: [link(seq, 5, flags=NLM_F_DUMP_INTR)
                                            + error(seq, 0)])
    assert indexes(sock.exchange(RTM_GETLINK, ACKED, b"")) == [5]
    assert len(fake.sent) == 1


def test_the_receive_buffer_is_one_per_thread_and_reused() -> None:
    """A fresh 1 MiB buffer per receive cost more than a small namespace's whole dump."""
    sock, _ = socket_for(lambda seq, _: [link(seq, 1) + done(seq)])
    sock.exchange(RTM_GETLINK, DUMP, b"")
    first = netlink._buffers.buffer
    sock.exchange(RTM_GETLINK, DUMP, b"")
    assert netlink._buffers.buffer is first and len(first) == 1 << 20
    seen: list[object] = []
    thread = threading.Thread(target=lambda: (sock.exchange(RTM_GETLINK, DUMP, b""),
                                              seen.append(netlink._buffers.buffer)))
    thread.start()
    thread.join()
    assert seen and seen[0] is not first

"""The resolver's status query (kernel/resolver.py `status`): a moment when nothing
answers on the address (its socket being replaced: the query is refused) does not
make a serving resolver look "not answering"; silence still ends in None, in time."""

from __future__ import annotations

import socket
import threading
import time

from reconciler.kernel import resolver

DIGEST = "0123456789abcdef0123456789abcdef"


def _answer_after(delay: float) -> threading.Thread:
    """A stand-in resolver on 127.0.0.1:53 that binds only after `delay` seconds, then
    answers one status query with DIGEST."""

    def serve() -> None:
        time.sleep(delay)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 53))
            sock.settimeout(5)
            data, client = sock.recvfrom(512)
            sock.sendto(data + b"\x00\x00" + DIGEST.encode(), client)

    thread = threading.Thread(target=serve)
    thread.start()
    return thread


def test_refused_at_first_then_answered() -> None:
    thread = _answer_after(0.3)  # the first queries find the port closed: refused
    start = time.monotonic()
    assert resolver.status("127.0.0.1", timeout=1.0, attempts=2) == DIGEST
    assert time.monotonic() - start < 1.5
    thread.join()


def test_nobody_there_is_none_within_its_time() -> None:
    start = time.monotonic()
    assert resolver.status("127.0.0.1", timeout=0.5, attempts=2) is None
    assert 0.9 < time.monotonic() - start < 2.0

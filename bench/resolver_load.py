#!/usr/bin/env python3
"""DNS load for bench_resolver.py, run inside the client sandbox (`ip netns exec`).

    resolver_load.py rate SERVER QPS SECONDS NAME...   open loop: QPS queries a second
    resolver_load.py max SERVER SECONDS WINDOW NAME... closed loop: WINDOW in flight
    resolver_load.py seq SERVER COUNT NAME             one at a time (latency)
    resolver_load.py wait SERVER NAME TIMEOUT          until NAME has an A record

Prints one JSON object: queries sent and answered, answers with records, latency
p50/p99/max in ms, queries answered per second. Queries are A queries built with
dnspython once; only their ids change.
"""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import sys
import time

import dns.message


def _queries(names: list[str]) -> list[bytearray]:
    return [bytearray(dns.message.make_query(n, "A").to_wire()) for n in names]


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _summary(sent: int, latencies: list[float], with_records: int, seconds: float
             ) -> dict[str, float]:
    return {"sent": sent, "answered": len(latencies), "with_records": with_records,
            "p50_ms": _percentile(latencies, 50) * 1000,
            "p99_ms": _percentile(latencies, 99) * 1000,
            "max_ms": max(latencies, default=float("nan")) * 1000,
            "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
            "answered_per_s": len(latencies) / seconds}


def _socket(server: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.connect((server, 53))
    sock.setblocking(False)
    return sock


def _receive(sock: socket.socket, sent_at: dict[int, float], latencies: list[float]) -> int:
    """Read every answer waiting; returns how many carried records."""
    found = 0
    while True:
        try:
            answer = sock.recv(4096)
        except BlockingIOError:
            return found
        now = time.perf_counter()
        start = sent_at.pop(int.from_bytes(answer[:2], "big"), None)
        if start is not None:
            latencies.append(now - start)
            found += answer[6:8] != b"\x00\x00"


def rate(server: str, qps: float, seconds: float, names: list[str]) -> dict[str, float]:
    queries = _queries(names)
    sock = _socket(server)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    found = sent = 0
    start = time.perf_counter()
    total = int(qps * seconds)
    while sent < total:
        due = int((time.perf_counter() - start) * qps) + 1
        while sent < min(due, total):
            query = queries[sent % len(queries)]
            query[0:2] = (sent & 0xFFFF).to_bytes(2, "big")
            sent_at[sent & 0xFFFF] = time.perf_counter()
            sock.send(query)
            sent += 1
        if selector.select(0.0005):
            found += _receive(sock, sent_at, latencies)
    end = time.perf_counter() + 1.0
    while sent_at and time.perf_counter() < end:
        if selector.select(0.01):
            found += _receive(sock, sent_at, latencies)
    return _summary(sent, latencies, found, time.perf_counter() - start)


def closed(server: str, seconds: float, window: int, names: list[str]) -> dict[str, float]:
    queries = _queries(names)
    sock = _socket(server)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    found = sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        while len(sent_at) < window:
            query = queries[sent % len(queries)]
            query[0:2] = (sent & 0xFFFF).to_bytes(2, "big")
            sent_at[sent & 0xFFFF] = time.perf_counter()
            sock.send(query)
            sent += 1
        if selector.select(0.2):
            found += _receive(sock, sent_at, latencies)
        else:
            sent_at.clear()  # lost: refill the window
    return _summary(sent, latencies, found, time.perf_counter() - start)


def sequential(server: str, count: int, name: str) -> dict[str, float]:
    query = _queries([name])[0]
    sock = _socket(server)
    sock.setblocking(True)
    sock.settimeout(2.0)
    latencies: list[float] = []
    found = 0
    start = time.perf_counter()
    for i in range(count):
        query[0:2] = (i & 0xFFFF).to_bytes(2, "big")
        began = time.perf_counter()
        sock.send(query)
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            continue
        latencies.append(time.perf_counter() - began)
        found += answer[6:8] != b"\x00\x00"
    return _summary(count, latencies, found, time.perf_counter() - start)


def wait(server: str, name: str, timeout: float) -> dict[str, float]:
    """Ask until NAME has a record; prints "ready" once the first answer (without one)
    came, and returns the CLOCK_MONOTONIC time of the first answer with one."""
    query = _queries([name])[0]
    sock = _socket(server)
    sock.setblocking(True)
    sock.settimeout(0.05)
    start = time.monotonic()
    ready = False
    refused = 0
    while time.monotonic() - start < timeout:
        try:
            sock.send(query)
            answer = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionRefusedError:  # no socket listening there (during a reload)
            refused += 1
            time.sleep(0.0002)
            continue
        if answer[6:8] != b"\x00\x00":
            return {"answered_at": time.monotonic(), "seconds": time.monotonic() - start,
                    "refused": refused}
        if not ready:
            print("ready", flush=True)
            ready = True
        time.sleep(0.0002)
    return {"answered_at": float("nan"), "seconds": float("nan"), "refused": refused}


def main(argv: list[str]) -> None:
    mode, server = argv[0], argv[1]
    if mode == "rate":
        result = rate(server, float(argv[2]), float(argv[3]), argv[4:])
    elif mode == "max":
        result = closed(server, float(argv[2]), int(argv[3]), argv[4:])
    elif mode == "seq":
        result = sequential(server, int(argv[2]), argv[3])
    else:
        result = wait(server, argv[2], float(argv[3]))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

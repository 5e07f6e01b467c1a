#!/usr/bin/env python3
"""The netlink codec alone: dumps of a big host and of many small namespaces.

Runs itself inside a throw-away network + mount namespace. Builds, with
iproute2 (not cnm), one bridge with IPv4 and IPv6 addresses and N veth pairs
whose host ends are its ports and whose peers sit in N namespaces (each with
an IPv4 and an IPv6 address and a default route), then times, R times each:

  host links      `Rtnl().links()` of the host (N + 2 links)
  host addresses  `Rtnl().addresses()` of the host
  host routes     `Rtnl().routes()` of the host
  bridge ports    `brport.hairpin_ports()` (AF_BRIDGE dump, N ports)
  namespaces      for every namespace: open a socket in it, links, addresses,
                  routes of the main table (observation's reads, in one process)
  decode links    cnm's decoder on the host links dump captured once (no kernel)
  pyroute2 links  (--pyroute2) pyroute2's `MarshalRtnl` on that same captured dump

Each is reported as wall-clock time and as this process's CPU time (user +
system, the kernel's work for the dump included), which other load on the
machine disturbs less.

    python3 bench/bench_netlink.py --sizes 1000 [--repeat 5] [--inner 3] [--pyroute2]
                                   [--against /work/main]

Each round runs in a fresh process per checkout (this one, and --against's),
in the same namespaces, so that a comparison of two codecs shares the
machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, isolate, run_isolated, timed

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO))
from reconciler.kernel import brport  # noqa: E402  (the repository, as bench_scale runs it)
from reconciler.kernel.rtnl import Rtnl  # noqa: E402


def build(n: int) -> None:
    names = [f"s{i:04d}" for i in range(n)]
    host = [f"netns add {ns}" for ns in names]
    host += ["link add br0 type bridge", "addr add 10.80.0.1/16 dev br0",
             "addr add fd00:80::1/64 dev br0", "link set br0 up"]
    host += [f"link add v{i:04d} type veth peer name eth0 netns {ns}"
             for i, ns in enumerate(names)]
    host += [f"link set v{i:04d} master br0 up" for i in range(n)]
    timed(["ip", "-batch", "-"], "\n".join(host) + "\n")
    for i, ns in enumerate(names):
        batch = (f"link set lo up\naddr add 10.80.{i // 250}.{i % 250 + 2}/16 dev eth0\n"
                 f"addr add fd00:80::{i + 2:x}/64 dev eth0 nodad\nlink set eth0 up\n"
                 "route add default via 10.80.0.1\n")
        timed(["ip", "-n", ns, "-batch", "-"], batch)


def raw_link_dump() -> list[bytes]:
    """The host's link dump as the kernel sends it (datagrams), without cnm's code."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    sock.bind((0, 0))
    body = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + struct.pack("=HHI", 8, 29, 1 << 3)
    sock.send(struct.pack("=IHHII", 16 + len(body), 18, 0x301, 1, 0) + body)
    datagrams = []
    done = False
    while not done:
        data = sock.recv(1 << 20)
        datagrams.append(data)
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            done = done or kind == 3  # NLMSG_DONE
            offset += (length + 3) & ~3
    sock.close()
    return datagrams


def cnm_decoder() -> Callable[[list[bytes]], int]:
    """cnm's link decoder on whole datagrams (whichever codec this checkout has)."""
    try:
        from reconciler.kernel.netlink import messages
        from reconciler.kernel.rtnl import decode_link

        def decode(datagrams: list[bytes]) -> int:
            count = 0
            for data in datagrams:
                for kind, _flags, offset, end in messages(data):
                    if kind == 16:  # each message copied out first, as exchange() does
                        decode_link(data[offset:end], 16, end - offset)
                        count += 1
            return count
    except ImportError:
        from reconciler.kernel.rtnl import _parse_link

        def decode(datagrams: list[bytes]) -> int:
            count = 0
            for data in datagrams:
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if kind == 16:
                        _parse_link(data[offset:offset + length], 16)
                        count += 1
                    offset += (length + 3) & ~3
            return count
    return decode


def pyroute2_decoder() -> Callable[[list[bytes]], int]:
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    def decode(datagrams: list[bytes]) -> int:
        marshal = MarshalRtnl()
        return sum(1 for data in datagrams for m in marshal.parse(data)
                   if m["header"]["type"] == 16)
    return decode


def sweep(names: list[str]) -> None:
    for ns in names:
        with Rtnl(ns) as reader:
            reader.links()
            reader.addresses()
            reader.routes(table=254)


def measure(repeat: int, with_pyroute2: bool) -> dict[str, list[float]]:
    """Time every dump of the namespace this process runs in (built by `build`)."""
    names = sorted(os.listdir("/run/netns"))
    host = Rtnl()
    datagrams = raw_link_dump()
    decode = cnm_decoder()
    jobs: dict[str, Callable[[], object]] = {
        "host links": host.links,
        "host addresses": host.addresses,
        "host routes": host.routes,
        "bridge ports": brport.hairpin_ports,
        "namespaces": lambda: sweep(names),
        "decode links": lambda: decode(datagrams),
    }
    if with_pyroute2:
        slow = pyroute2_decoder()
        jobs["pyroute2 links"] = lambda: slow(datagrams)
        assert slow(datagrams) == decode(datagrams) == len(host.links())
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        for name, job in jobs.items():
            start, cpu = time.perf_counter(), time.process_time()
            job()
            times.setdefault(name, []).append(time.perf_counter() - start)
            times.setdefault(f"{name} (CPU)", []).append(time.process_time() - cpu)
    host.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pyroute2", action="store_true")
    parser.add_argument("--against", metavar="CHECKOUT",
                        help="also time this checkout's codec (e.g. /work/main), in the same "
                             "namespaces, alternating rounds with this one")
    parser.add_argument("--inner", type=int, default=3,
                        help="runs of each dump per round and process (the first one pays "
                             "for warming up)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a child: time this namespace with the codec on its sys.path
        print(json.dumps(measure(args.repeat, args.pyroute2)))
        return

    def inside() -> None:
        isolate()
        if len(args.sizes) > 1:
            raise SystemExit("one size per run (each run builds its own namespaces)")
        n = args.sizes[0]
        build(n)
        checkouts = {"this": str(REPO)}
        if args.against:
            checkouts = {args.against: str(Path(args.against).resolve()), **checkouts}
        times: dict[str, dict[str, list[float]]] = {c: {} for c in checkouts}
        for _ in range(args.repeat):  # rounds alternate, so both share the machine's mood
            for label, checkout in checkouts.items():
                command = [sys.executable, __file__, "--measure", "--repeat", str(args.inner)]
                if args.pyroute2:
                    command.append("--pyroute2")
                out = subprocess.run(command, check=True, capture_output=True, text=True,
                                     env={**os.environ, "PYTHONPATH": checkout})
                for name, runs in json.loads(out.stdout).items():
                    times[label].setdefault(name, []).extend(runs)
        print("| N | checkout | dump | median ms | min ms | runs (ms) |\n|---|---|---|---|---|---|")
        for label, table in times.items():
            for name, runs in table.items():
                text = ", ".join(f"{t * 1000:.1f}" for t in runs)
                print(f"| {n} | {label} | {name} | {statistics.median(runs) * 1000:.1f} "
                      f"| {min(runs) * 1000:.1f} | {text} |")

    run_isolated(inside)


if __name__ == "__main__":
    main()

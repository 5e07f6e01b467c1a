#!/usr/bin/env python3
"""The netlink codec's user-space cost, counted in instructions: stable on a busy machine.

Wall-clock and CPU times of a dump vary by tens of percent when other work
shares the cores; instruction counts do not. This captures real dumps once,
in a throw-away namespace: a big host (a bridge, N veth pairs, 1000 of them
its ports, N routes) and one small sandbox namespace (links, addresses,
default routes, as observation reads it). Then, for each checkout, a fresh
interpreter under valgrind (cachegrind, no cache simulation) replays them
through that checkout's `Rtnl` (and `brport`) over a scripted socket: the
host's links, routes and bridge ports R times each, and the sandbox's three
reads R x 200 times (observing a thousand namespaces is that, a thousand
times). Each count is minus the same interpreter's count
with no replay (imports and setup), so only the exchange and decoding are
left. Needs valgrind.

    python3 bench/bench_netlink_replay.py --against /work/main [--pairs 1500] [--repeat 5]
                                          [--pyroute2]
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import socket
import struct
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from common import REPO, isolate, run_isolated

PORTS = 1000  # bridge ports (a bridge takes at most 1024)
PORT = 4242  # the port id the scripted socket claims; captured replies are rewritten to it


def _dump(sock: socket.socket, msg_type: int, body: bytes) -> list[bytes]:
    """A dump's datagrams, with every reply's sequence number 1 and port id PORT."""
    sock.send(struct.pack("=IHHII", 16 + len(body), msg_type, 0x301, 1, 0) + body)
    datagrams, done = [], False
    while not done:
        data = bytearray(sock.recv(1 << 20))
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            done = done or kind == 3
            struct.pack_into("=II", data, offset + 8, 1, PORT)
            offset += (length + 3) & ~3
        datagrams.append(bytes(data))
    return datagrams


def capture(pairs: int, path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from reconciler.kernel import netns  # only to open a socket inside the small namespace

    lines = ["link add br0 type bridge\nlink set br0 up\naddr add 10.0.0.1/16 dev br0\n"
             "addr add fd00::1/64 dev br0 nodad\n"]
    lines += [f"link add a{i} type veth peer name b{i}\n"
              f"link set a{i} alias 'cnm/v1 set=default Endpoint/e{i}'\n" for i in range(pairs)]
    lines += [f"link set a{i} master br0\n" for i in range(min(pairs, PORTS))]
    lines += [f"route add 10.{1 + i // 250}.{i % 250}.0/24 via 10.0.0.2\n"
              f"route add fd01:{i:x}::/64 via fd00::2\n" for i in range(pairs // 2)]
    lines.append("netns add small\nlink add v0 type veth peer name eth0 netns small\n")
    subprocess.run(["ip", "-batch", "-"], input="".join(lines), text=True, check=True)
    subprocess.run(["ip", "-n", "small", "-batch", "-"], text=True, check=True, input=(
        "link set lo up alias 'cnm/v1 set=default Sandbox/s'\nlink set eth0 up\n"
        "addr add 10.0.0.2/24 dev eth0\naddr add fd00::2/64 dev eth0 nodad\n"
        "route add default via 10.0.0.1\n"))
    links = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + struct.pack("=HHI", 8, 29, 1 << 3)
    addresses = struct.pack("=BBBBI", 0, 0, 0, 0, 0)
    routes = struct.pack("=BBBBBBBBI", 0, 0, 0, 0, 254, 0, 0, 0, 0) + struct.pack("=HHI", 8, 15,
                                                                                 254)
    host = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    host.bind((0, 0))
    with netns.entered("small"):
        small = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    small.setsockopt(270, 12, 1)  # strict checking, as cnm's sockets
    small.bind((0, 0))
    every_route = struct.pack("=BBBBBBBBI", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    ports = struct.pack("=BxHiII", 7, 0, 0, 0, 0)  # AF_BRIDGE
    dumps = {"big": [_dump(host, 18, links)], "routes": [_dump(host, 26, every_route)],
             "ports": [_dump(host, 18, ports)],
             "small": [_dump(small, 18, links), _dump(small, 22, addresses),
                       _dump(small, 26, routes)]}
    path.write_bytes(pickle.dumps(dumps))


_REPLAY = r'''
import pickle, struct, sys
path, size, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
answers = pickle.loads(open(path, "rb").read())["big" if size == "pyroute2" else size]
class Scripted:
    def __init__(self): self.i, self.queue = 0, []
    def send(self, data):
        self.queue = list(answers[self.i % len(answers)]); self.i += 1; return len(data)
    def recv_into(self, buffer):
        data = self.queue.pop(0); buffer[:len(data)] = data; return len(data)
    def getsockname(self): return (PORT, 0)
    def setsockopt(self, *args): pass
    def close(self): pass
if size == "pyroute2":  # the oracle's decoder on the big dump, every message parsed whole
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl
    for _ in range(reps):
        marshal = MarshalRtnl()
        assert sum(1 for data in answers[0] for m in marshal.parse(data)
                   if m["header"]["type"] == 16) > 0
    sys.exit()
if size == "ports":  # brport opens a socket per call: hand it the scripted one
    from reconciler.kernel import brport
    try:
        from reconciler.kernel import netlink
        netlink.open_socket = lambda *args, **kwargs: Scripted()
    except ImportError:  # a codec from before kernel/netlink.py
        import socket, types
        fake = types.SimpleNamespace(**{k: getattr(socket, k) for k in dir(socket)
                                        if k.isupper()})
        fake.socket = lambda *args: type("S", (Scripted,), {
            "bind": lambda self, a: None, "__enter__": lambda self: self,
            "__exit__": lambda self, *a: None})()
        brport.socket = fake
    for _ in range(reps):
        assert brport.hairpin_ports()
    sys.exit()
from reconciler.kernel import rtnl
reader = object.__new__(rtnl.Rtnl)
try:
    from reconciler.kernel.netlink import NetlinkSocket
    reader.netlink = NetlinkSocket(0, sock=Scripted())
    def rewind(): reader.netlink._seq = 0
except ImportError:  # a codec from before kernel/netlink.py
    reader._sock, reader._seq = Scripted(), 0
    def rewind(): reader._seq = 0
for _ in range(reps):
    if size == "big":
        rewind(); reader.links()
    elif size == "routes":
        rewind(); reader.routes()
    else:
        rewind(); reader.links(); rewind(); reader.addresses(); rewind(); reader.routes(table=254)
'''.replace("PORT", str(PORT))


def instructions(checkout: str, path: Path, size: str, reps: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         os.path.realpath(sys.executable), "-c", _REPLAY, str(path), size, str(reps)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": checkout})
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    assert match, out.stderr[-2000:]
    return int(match[1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--against", metavar="CHECKOUT", required=True)
    parser.add_argument("--pyroute2", action="store_true",
                        help="also count pyroute2's MarshalRtnl decoding the big dump")
    args = parser.parse_args()

    def inside() -> None:
        isolate()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "dumps.pickle"
            capture(args.pairs, path)
            print("| checkout | replay | instructions (millions) |\n|---|---|---|")
            for label, checkout in ((args.against, args.against), ("this", str(REPO))):
                for size, reps, what in (
                        ("big", args.repeat, f"links() of {2 * args.pairs + 2} links"),
                        ("routes", args.repeat, "routes() of the host (every table)"),
                        ("ports", args.repeat,
                         f"hairpin_ports() of {min(args.pairs, PORTS)} bridge ports"),
                        ("small", args.repeat * 200,
                         "a sandbox's links(), addresses(), routes(254)")):
                    net = instructions(checkout, path, size, reps) \
                        - instructions(checkout, path, size, 0)
                    what = f"{reps} x {what}"
                    print(f"| {label} | {what} | {net / 1e6:.1f} |")
            if args.pyroute2:
                net = instructions(str(REPO), path, "pyroute2", args.repeat) \
                    - instructions(str(REPO), path, "pyroute2", 0)
                print(f"| pyroute2 {version('pyroute2')} | {args.repeat} x MarshalRtnl on the "
                      f"{2 * args.pairs + 2} links | {net / 1e6:.1f} |")

    run_isolated(inside)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The resolver component, measured: cnm's (dnspython) against Debian's aardvark-dns 1.4.

Runs itself inside a throw-away network + mount namespace. One bridge carries
two gateway addresses: 10.200.0.1, where cnm's resolver listens (started as
cnm starts it, `kernel/resolver.ensure`), and 10.200.255.254, where
aardvark-dns listens (its documented configuration directory, one file per
network: the listen line, then `id ipv4s ipv6s names`). Both know the same N
endpoints (names e<i>, s<i>, alias a<i>), among them the client's own address.
The client is a sandbox on the bridge (`bench/resolver_load.py` inside it via
`ip netns exec`); the upstream, for forwarding, is a DNS server in a namespace
of its own (192.0.2.53), the host's only resolver (the bench's /etc/resolv.conf
is a bind mount in its mount namespace).

For each resolver, in turns, ROUNDS times:
  rate     peer names at a fixed rate (open loop, --qps for --seconds): answered/s, p50, p99
  max      peer names with 16 queries in flight (closed loop): answers per second
  forward  a name only the upstream has, one at a time: p50/p99, next to the upstream
           asked directly from the host (the resolver's own vantage point)
  +1       one more endpoint: configuration written and SIGHUP sent, until its name
           resolves
  memory   resident set size after the load, at N endpoints

    python3 bench/bench_resolver.py --endpoints 1000 --qps 5000 --seconds 5 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, isolate, run_isolated

CNM_AT, AARDVARK_AT, CLIENT = "10.200.0.1", "10.200.255.254", "10.200.0.2"
UPSTREAM = "192.0.2.53"
AARDVARK = "/usr/lib/podman/aardvark-dns"
AARDVARK_DIR = "/run/cnm/aardvark-bench"
LOAD = str(REPO / "bench" / "resolver_load.py")
REFUSED: list[int] = []  # queries refused while the last `one_more` waited


def address(i: int) -> str:
    return CLIENT if i == 0 else f"10.200.{i // 250 + 1}.{i % 250 + 2}"


def network() -> None:
    for command in (
        "ip link add br-rbench type bridge", f"ip addr add {CNM_AT}/16 dev br-rbench",
        f"ip addr add {AARDVARK_AT}/16 dev br-rbench", "ip link set br-rbench up",
        "ip netns add client", "ip link add cvh type veth peer name eth0 netns client",
        "ip link set cvh master br-rbench", "ip link set cvh up",
        f"ip -n client addr add {CLIENT}/16 dev eth0", "ip -n client link set eth0 up",
        "ip -n client link set lo up",
        "ip netns add upstream", "ip link add uph type veth peer name eth0 netns upstream",
        "ip addr add 192.0.2.1/24 dev uph", "ip link set uph up",
        f"ip -n upstream addr add {UPSTREAM}/24 dev eth0", "ip -n upstream link set eth0 up",
        "ip -n upstream link set lo up",
    ):
        subprocess.run(command.split(), check=True)
    conf = Path("/run/cnm/host-resolv.conf")
    conf.write_text(f"nameserver {UPSTREAM}\n")
    subprocess.run(["mount", "--bind", str(conf), "/etc/resolv.conf"], check=True)
    time.sleep(2.5)  # the bridge forwards once its ports leave the learning state


def cnm_attrs(n: int) -> dict[str, object]:
    names, clients, scopes = [], [], []
    for i in range(n):
        a = address(i)
        names += [f"e{i:04d} {a}", f"s{i:04d} {a}", f"a{i:04d} {a}"]
        clients.append(f"{a} s{i:04d}")
        scopes.append(f"s{i:04d} bench")
    return {"listen": (f"{CNM_AT} bench",), "clients": tuple(sorted(clients)),
            "scopes": tuple(sorted(scopes)), "upstreams": (),
            "names.bench": tuple(sorted(names)), "process": "serving"}


def aardvark_config(n: int) -> str:
    lines = [AARDVARK_AT]
    lines += [f"{i:064x} {address(i)}  e{i:04d},s{i:04d},a{i:04d}" for i in range(n)]
    return "\n".join(lines) + "\n"


def start_cnm(n: int) -> int:
    from reconciler.kernel import resolver

    resolver.ensure("bench", cnm_attrs(n))  # type: ignore[arg-type]
    pid = resolver.running_pid(resolver.directory_of("bench"))
    assert pid is not None
    return pid


def start_aardvark(n: int) -> int:
    os.makedirs(AARDVARK_DIR, exist_ok=True)
    Path(AARDVARK_DIR, "bench").write_text(aardvark_config(n))
    subprocess.run([AARDVARK, "--config", AARDVARK_DIR, "-p", "53", "run"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert load("wait", AARDVARK_AT, "e0001", "10")["seconds"] < 10
    return int(Path(AARDVARK_DIR, "aardvark.pid").read_text().strip())


def one_more(at: str, name: str, change: Callable[[], None]) -> float:
    """Seconds from the start of `change` (configuration written, SIGHUP sent) to the first
    answer with a record for `name`, asked by a client already asking in a loop."""
    client = subprocess.Popen(["ip", "netns", "exec", "client", sys.executable, LOAD, "wait",
                               at, name, "30"], stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None and client.stdout.readline().strip() == "ready"
    start = time.monotonic()
    change()
    result = json.loads(client.stdout.readline())
    client.wait()
    REFUSED.append(int(result["refused"]))
    return float(result["answered_at"]) - start


def one_more_cnm(n: int) -> float:
    from reconciler.kernel import resolver
    from reconciler.resolver.records import config_text

    directory = resolver.directory_of("bench")

    def change() -> None:
        text = config_text("bench", cnm_attrs(n + 1))  # type: ignore[arg-type]
        Path(f"{directory}/config.json.tmp").write_text(text)
        os.replace(f"{directory}/config.json.tmp", f"{directory}/config.json")
        pid = resolver.running_pid(directory)
        assert pid is not None
        os.kill(pid, signal.SIGHUP)

    return one_more(CNM_AT, f"e{n:04d}", change)


def one_more_aardvark(n: int, pid: int) -> float:
    def change() -> None:
        Path(AARDVARK_DIR, "bench").write_text(aardvark_config(n + 1))
        os.kill(pid, signal.SIGHUP)

    return one_more(AARDVARK_AT, f"e{n:04d}", change)


def load(*args: str) -> dict[str, float]:
    out = subprocess.run(["ip", "netns", "exec", "client", sys.executable, LOAD, *args],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def upstream_direct(count: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, LOAD, "seq", UPSTREAM, str(count), "ext.test"],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(name: str, at: str, pid: int, args: argparse.Namespace) -> dict[str, float]:
    peers = [f"{kind}{i:04d}" for i in range(1, args.endpoints, 7) for kind in "esa"]
    figures: dict[str, float] = {}
    rate = load("rate", at, str(args.qps), str(args.seconds), *peers)
    assert rate["with_records"] > 0.99 * rate["answered"], (name, rate)
    figures.update({f"rate {args.qps:g}/s: answered/s": rate["answered_per_s"],
                    "rate: p50 ms": rate["p50_ms"], "rate: p99 ms": rate["p99_ms"],
                    "rate: lost": rate["sent"] - rate["answered"]})
    most = load("max", at, str(args.seconds), "16", *peers)
    figures["max (16 in flight): answered/s"] = most["answered_per_s"]
    figures["max: p99 ms"] = most["p99_ms"]
    forwarded = load("seq", at, "300", "ext.test")
    assert forwarded["with_records"] == forwarded["answered"] > 0, (name, forwarded)
    direct = upstream_direct(300)
    figures.update({"forward: p50 ms": forwarded["p50_ms"], "forward: p99 ms": forwarded["p99_ms"],
                    "upstream direct: p50 ms": direct["p50_ms"],
                    "upstream direct: p99 ms": direct["p99_ms"],
                    "forward adds (p50) ms": forwarded["p50_ms"] - direct["p50_ms"]})
    figures[f"memory at {args.endpoints} endpoints MB"] = rss_mb(pid)
    return figures


def inside(args: argparse.Namespace) -> None:
    isolate()
    network()
    upstream = subprocess.Popen(
        ["ip", "netns", "exec", "upstream", sys.executable,
         str(REPO / "tests" / "kernel" / "dnsupstream.py"), UPSTREAM],
        stdout=subprocess.PIPE, text=True)
    assert upstream.stdout is not None and upstream.stdout.readline().strip() == "ready"
    results: dict[str, dict[str, list[float]]] = {"cnm": {}, "aardvark-dns": {}}
    pids: list[int] = []
    try:
        cnm_pid = start_cnm(args.endpoints)
        aardvark_pid = start_aardvark(args.endpoints)
        pids = [cnm_pid, aardvark_pid]
        for _ in range(args.rounds):
            for name, at, pid in (("cnm", CNM_AT, cnm_pid), ("aardvark-dns", AARDVARK_AT,
                                                             aardvark_pid)):
                for key, value in measure(name, at, pid, args).items():
                    results[name].setdefault(key, []).append(value)
        for r in range(args.rounds):  # each round one more endpoint than the last
            n = args.endpoints + r
            for name, one in (("cnm", lambda n=n: one_more_cnm(n)),
                              ("aardvark-dns", lambda n=n: one_more_aardvark(n, aardvark_pid))):
                results[name].setdefault("+1 endpoint until it resolves ms", []).append(
                    one() * 1000)
                results[name].setdefault("+1: queries refused meanwhile", []).append(
                    REFUSED[-1])
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        upstream.kill()
    print(f"| figure (median of {args.rounds}) | cnm (dnspython) | aardvark-dns 1.4 |")
    print("|---|---|---|")
    for key in results["cnm"]:
        cells = [statistics.median(results[n][key]) for n in ("cnm", "aardvark-dns")]
        print(f"| {key} | {cells[0]:.2f} | {cells[1]:.2f} |")
    print("\nruns: " + json.dumps(results), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--qps", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    run_isolated(lambda: inside(args))


if __name__ == "__main__":
    main()

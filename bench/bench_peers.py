#!/usr/bin/env python3
"""cnm against the real peers, side by side in one run: N endpoints, each in its own
network namespace, on one bridge network; create them all, then delete them all.

* cnm: one `cnm apply` of N sandboxes + endpoints, one `cnm delete` (namespaces
  included: cnm creates and removes them itself);
* CNI reference plugins (bridge + host-local, ipMasq on, as cnm masquerades too):
  one ADD exec per container, then one DEL exec per container, as containerd does;
* netavark: one `netavark setup` per container, then one `teardown`, as podman does.

The peers' namespaces are made before their create and removed after their delete,
outside the timing (so the peers' figures leave that cost out and cnm's include it).
Between contenders the benchmark waits until no veth is left in the host namespace:
the kernel tears a namespace down asynchronously, and the next contender would pay
for the previous one's cleanup. The contenders take turns in every round.

    python3 bench/bench_peers.py --size 100 --repeat 3

Runs itself in a throw-away network + mount namespace, with tmpfs over cnm's and
the peers' directories (never the machine's own network or files).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, isolate, run_isolated, sandboxed_endpoints, timed_cnm

sys.path.insert(0, str(REPO / "tests" / "kernel"))
from peerlib import (  # noqa: E402  (the peers are driven exactly as the peer tests drive them)
    PEER_DIRS,
    cni_conflist,
    cni_exec,
    netavark,
    netavark_network,
    netavark_options,
    wait_for,
)

TOOLS = ("cnm", "CNI bridge", "netavark")
TARGET = 0.25  # cnm's time at most this share of the faster peer's


def veths_left() -> int:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                         text=True, check=True).stdout
    return len(out.splitlines())


def settle() -> None:
    """Wait until the kernel has torn down every namespace of the previous contender."""
    if not wait_for(lambda: veths_left() == 0, 120, 0.05):
        raise SystemExit("veths left behind after 120 s")


def make_netns(names: list[str]) -> None:
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in names),
                   text=True, check=True)


def remove_netns(names: list[str]) -> None:
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names),
                   text=True, check=True)


def clock(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_cnm(n: int, work: Path) -> tuple[float, float]:
    (work / "all.yaml").write_text(sandboxed_endpoints(n, "10.200.0.0/16"))
    create = timed_cnm("apply", "-f", str(work), "--yes")
    delete = timed_cnm("delete", "-f", str(work), "--yes")
    return create, delete


def run_cni(n: int, _work: Path) -> tuple[float, float]:
    conflist = cni_conflist("bench", "cni0", "10.201.0.0/16", ports=False)
    names = [f"cni{i:04d}" for i in range(n)]
    make_netns(names)
    results: dict[str, object] = {}
    create = clock(lambda: [cni_exec("ADD", conflist, name, f"/run/netns/{name}",
                                     results=results) for name in names])
    delete = clock(lambda: [cni_exec("DEL", conflist, name, f"/run/netns/{name}",
                                     results=results) for name in names])
    remove_netns(names)
    subprocess.run(["ip", "link", "del", "cni0"], check=True)  # CNI leaves its bridge
    return create, delete


def run_netavark(n: int, _work: Path) -> tuple[float, float]:
    network = netavark_network("bench", "podman9", "10.202.0.0/16", "10.202.0.1")
    pool = ipaddress.IPv4Network("10.202.0.0/16")
    names = [f"nv{i:04d}" for i in range(n)]
    options = {name: netavark_options(network, name, str(pool.network_address + 2 + i))
               for i, name in enumerate(names)}
    config = "/run/containers/bench"  # on tmpfs, like podman's /run/containers/networks
    make_netns(names)
    create = clock(lambda: [netavark("setup", config, f"/run/netns/{name}", options[name])
                            for name in names])
    delete = clock(lambda: [netavark("teardown", config, f"/run/netns/{name}", options[name])
                            for name in names])
    remove_netns(names)
    return create, delete


RUNNERS = {"cnm": run_cnm, "CNI bridge": run_cni, "netavark": run_netavark}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def inside(n: int, repeat: int) -> None:
    isolate()
    for directory in ("/var/lib/cnm", *PEER_DIRS):
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "cnm-bench", directory], check=True)
    subprocess.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
    load_before = load()
    runs: dict[str, list[tuple[float, float]]] = {tool: [] for tool in TOOLS}
    for round_ in range(repeat):
        order = TOOLS[round_ % len(TOOLS):] + TOOLS[:round_ % len(TOOLS)]
        for tool in order:
            with tempfile.TemporaryDirectory() as work:
                settle()
                runs[tool].append(RUNNERS[tool](n, Path(work)))
    settle()
    median = {tool: (statistics.median(c for c, _ in runs[tool]),
                     statistics.median(d for _, d in runs[tool])) for tool in TOOLS}
    print(f"| N | tool | create s (median of {repeat}) | delete s (median) | "
          "create runs s | delete runs s |")
    print("|---|---|---|---|---|---|")
    for tool in TOOLS:
        creates = ", ".join(f"{c:.2f}" for c, _ in runs[tool])
        deletes = ", ".join(f"{d:.2f}" for _, d in runs[tool])
        print(f"| {n} | {tool} | {median[tool][0]:.3f} | {median[tool][1]:.3f} | {creates} | "
              f"{deletes} |")
    print()
    for index, phase in enumerate(("create", "delete")):
        faster = min(("CNI bridge", "netavark"), key=lambda tool: median[tool][index])
        ratio = median["cnm"][index] / median[faster][index]
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"- {phase}: cnm / {faster} (the faster peer) = {ratio:.2f}x "
              f"(target <= {TARGET}x: {verdict})")
    print(f"- load average (1, 5, 15 min): {load_before} before, {load()} after; "
          f"{os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_isolated(lambda: inside(args.size, args.repeat))


if __name__ == "__main__":
    main()

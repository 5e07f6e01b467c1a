#!/usr/bin/env python3
"""The kernel's own cost of deleting N sandboxed endpoints, whatever the order of removal.

The topology of bench_scale (N namespaces, each with a veth whose host end is
a port of one bridge) is built with the expert iproute2 script, then removed
with cnm's own `netns.remove_netns`, no reconciler around it:

  one by one  each namespace removed (its teardown starts at once in the
              kernel's work queue), then the bridge: what cnm does
  held        each namespace kept alive by a descriptor while all are
              removed, the descriptors closed together, then the bridge: the
              unmounts no longer wait behind earlier teardowns, but the
              teardown itself is not cheaper (session 3 tried it in cnm and
              measured no gain end to end)

Times: the unmounts; deleting the bridge; and the whole run until the kernel
has destroyed every veth (polled in a sysfs of this namespace), which is where
`cnm delete` and bench_scale's expert delete stop their clocks.

    python3 bench/bench_delete_floor.py --sizes 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench_scale import expert_create
from common import REPO, isolate, run_isolated, timed

sys.path.insert(0, str(REPO))
from reconciler.kernel import netns  # noqa: E402  (the repository, as bench_scale runs it)

MODES = ("one by one", "held")


def _veths_left() -> bool:
    return any(name.startswith("v") for name in os.listdir("/sys/class/net"))


def trial(n: int, mode: str) -> dict[str, float]:
    names = [(f"s{i:04d}", f"v{i:04d}", i) for i in range(n)]
    expert_create(names)
    time.sleep(min(3.0, n / 300))  # let the creation's own background work end
    start = time.perf_counter()
    held = []
    for namespace, _, _ in names:
        if mode == "held":
            held.append(os.open(netns.netns_path(namespace), os.O_RDONLY | os.O_CLOEXEC))
        netns.remove_netns(namespace)
    unmounted = time.perf_counter()
    for descriptor in held:
        os.close(descriptor)
    timed(["ip", "link", "del", "br0"])
    bridge = time.perf_counter()
    while _veths_left():
        time.sleep(0.005)
    end = time.perf_counter()
    if os.listdir("/run/netns"):
        raise SystemExit("namespaces left behind")
    return {"unmount": unmounted - start, "bridge": bridge - unmounted, "until gone": end - start}


def inside(sizes: list[int], repeat: int) -> None:
    isolate()
    print(f"| N | removal | unmount s | bridge delete s | until the kernel is done s "
          f"(median of {repeat}) | runs s |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for _ in range(repeat):
            for mode in MODES:  # alternating, so that drift of the VM hits both
                runs[mode].append(trial(n, mode))
        for mode in MODES:
            median = {key: statistics.median(r[key] for r in runs[mode]) for key in runs[mode][0]}
            each = ", ".join(f"{r['until gone']:.2f}" for r in runs[mode])
            print(f"| {n} | {mode} | {median['unmount']:.3f} | {median['bridge']:.3f} | "
                  f"{median['until gone']:.3f} | {each} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_isolated(lambda: inside(args.sizes, args.repeat))


if __name__ == "__main__":
    main()

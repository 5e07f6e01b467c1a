#!/usr/bin/env python3
"""cnm's attribute diff against DeepDiff (its test oracle) on one big state pair.

Builds N sandboxes and N endpoints (2N resources, the attributes an observed
state holds), an observed copy with one resource in a hundred drifted, and
times, R times each: cnm's `diff_resources` over every resource pair (what
`make_plan` does), `make_plan` itself, and DeepDiff over the same attribute
maps. No kernel, no root.

    python3 bench/bench_diff_oracle.py [--size 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconciler.diff import diff_resources  # noqa: E402
from reconciler.plan import make_plan  # noqa: E402
from reconciler.state import Resource, ResourceKey, State  # noqa: E402


def states(n: int) -> tuple[State, State]:
    desired: dict[ResourceKey, Resource] = {}
    observed: dict[ResourceKey, Resource] = {}
    for i in range(n):
        sandbox = {"netns": f"s{i:04d}", "lo_up": True,
                   "hosts": tuple(f"10.0.{j // 250}.{j % 250} e{j:04d}" for j in range(3)),
                   "resolv": ("nameserver 10.0.0.1",), "hostname": f"s{i:04d}"}
        endpoint = {"veth": f"v{i:04d}", "network": "big", "sandbox": f"s{i:04d}", "up": True,
                    "mtu": 1500, "ifname": "eth0",
                    "mac": f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                    "ipv4": f"10.0.{i // 250}.{i % 250 + 2}/16", "ipv6": None,
                    "gateway4": "10.0.0.1", "gateway6": None}
        for kind, attrs in (("Sandbox", sandbox), ("Endpoint", endpoint)):
            key = ResourceKey(kind, f"{kind[0].lower()}{i:04d}")
            desired[key] = Resource(key, "default", attrs)
            drifted = dict(attrs, up=False) if i % 100 == 0 and kind == "Endpoint" else attrs
            observed[key] = Resource(key, "default", drifted)
    return State("default", desired), State("default", observed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    desired, observed = states(args.size)
    pairs = [(desired.resources[k], observed.resources[k]) for k in desired.resources]
    start = time.perf_counter()
    from deepdiff import DeepDiff
    imported = time.perf_counter() - start

    def cnm() -> int:
        return sum(len(diff_resources(want, have)) for want, have in pairs)

    def plan() -> int:
        return len(make_plan(desired, observed).actions)

    def deepdiff() -> int:
        return sum(len(DeepDiff(dict(have.attrs), dict(want.attrs))) for want, have in pairs)

    def deepdiff_whole() -> int:
        return len(DeepDiff({str(k): dict(r.attrs) for k, r in observed.resources.items()},
                            {str(k): dict(r.attrs) for k, r in desired.resources.items()}))

    assert cnm() == plan() == deepdiff() == args.size // 100
    print(f"{len(pairs)} resources, {args.size // 100} drifted; deepdiff import "
          f"{imported * 1000:.0f} ms\n| diff | median ms | runs (ms) |\n|---|---|---|")
    jobs = (("cnm diff_resources", cnm), ("cnm make_plan", plan),
            ("DeepDiff per resource", deepdiff), ("DeepDiff whole state", deepdiff_whole))
    for name, job in jobs:
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            job()
            runs.append(time.perf_counter() - t)
        text = ", ".join(f"{r * 1000:.1f}" for r in runs)
        print(f"| {name} | {statistics.median(runs) * 1000:.1f} | {text} |")


if __name__ == "__main__":
    main()

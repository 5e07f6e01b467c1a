#!/usr/bin/env python3
"""What the default interface names and routes (reconciler/interface_defaults.py) cost
the desired-state build, side by side with a baseline in the same run.

Pure planning, no kernel: N sandboxes on one network (a tenth of them also on a
second one), the kernel as a perfect apply left it; then the build `cnm watch`
repeats after one more endpoint (warm `BuildMemo`). The baseline is the same build
with placement replaced by what cnm did before it (`eth0` from the manifest, the
default route through every endpoint): the difference is the price of the feature.

    python3 bench/bench_interface_defaults.py --sizes 1000 --repeat 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler import desired as desired_module  # noqa: E402
from reconciler.caching import BuildMemo  # noqa: E402
from reconciler.interface_defaults import Placement, placements  # noqa: E402
from reconciler.loader import load_text  # noqa: E402
from reconciler.state import State  # noqa: E402


def manifests_text(n: int, extra: int = 0) -> str:
    docs = [
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: bench}\n"
        "spec: {ipam: [{subnet: 10.200.0.0/16}]}",
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: side}\n"
        "spec: {ipam: [{subnet: 10.201.0.0/16}]}",
    ]
    for i in range(n + extra):
        docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i}}}")
        docs.append(f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: s{i}-a}}\n"
                    f"spec: {{network: bench, sandbox: s{i}}}")
        if i % 10 == 0:
            docs.append(f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: s{i}-b}}\n"
                        f"spec: {{network: side, sandbox: s{i}}}")
    return "\n---\n".join(docs) + "\n"


def _before(manifests: object, joined: list[object], observed: State) -> dict[str, Placement]:
    """Placement as cnm had it before: the manifest's name (eth0), every family routed."""
    return {e.metadata.name: Placement("eth0", frozenset({4, 6}))  # type: ignore[attr-defined]
            for e in joined}


def _one_build(n: int, placing: Callable[..., dict[str, Placement]]) -> float:
    desired_module.placements = placing  # type: ignore[assignment]
    base, more = _TEXTS[n]
    observed = desired_module.build_desired(base, "default", State("default"))
    memo: BuildMemo = BuildMemo()  # type: ignore[type-arg]
    desired_module.build_desired(base, "default", observed, memo=memo)  # warm, as watch
    start = time.perf_counter()
    desired_module.build_desired(more, "default", observed, memo=memo)
    return time.perf_counter() - start


def _placing_alone(n: int) -> float:
    base, _ = _TEXTS[n]
    observed = desired_module.build_desired(base, "default", State("default"))
    joined = desired_module.joined_endpoints(base)
    start = time.perf_counter()
    placements(base, joined, observed)
    return time.perf_counter() - start


_TEXTS: dict[int, tuple[object, object]] = {}


def measure(n: int, repeat: int) -> dict[str, list[float]]:
    """Both builds alternately (so that the machine's load falls on both alike)."""
    _TEXTS[n] = (load_text(manifests_text(n), "b.yaml"), load_text(manifests_text(n, 1), "b.yaml"))
    runs: dict[str, list[float]] = {"before (no defaults)": [], "interface_defaults": [],
                                    "placements() alone": []}
    for _ in range(repeat):
        runs["before (no defaults)"].append(_one_build(n, _before))
        runs["interface_defaults"].append(_one_build(n, placements))
        runs["placements() alone"].append(_placing_alone(n))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print("| N sandboxes | desired-state build after +1 endpoint (warm) | median ms | min ms |")
    print("|---|---|---|---|")
    for n in args.sizes:
        for label, times in measure(n, args.repeat).items():
            print(f"| {n} | {label} | {statistics.median(times) * 1000:.1f} | "
                  f"{min(times) * 1000:.1f} |")

if __name__ == "__main__":
    main()

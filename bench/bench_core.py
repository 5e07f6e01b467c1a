#!/usr/bin/env python3
"""Benchmark of the core reconciler: N endpoints, each in its own sandbox, one bridge network.

Runs itself inside a throw-away network + mount namespace (never the machine's
own network) and times the real `cnm` command line:
  apply from scratch, no-op plan, +1 endpoint apply, delete of everything.

    python3 bench/bench_core.py --sizes 100 [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from common import EXTRA_PAIR, isolate, run_isolated, sandboxed_endpoints, timed_cnm


def run_size(n: int, work: Path) -> dict[str, float]:
    directory = work / f"n{n}"
    directory.mkdir()
    (directory / "all.yaml").write_text(sandboxed_endpoints(n))
    results = {"apply": timed_cnm("apply", "-f", str(directory), "--yes")}
    results["noop_plan"] = timed_cnm("plan", "-f", str(directory))
    (directory / "extra.yaml").write_text(EXTRA_PAIR)
    results["add_one"] = timed_cnm("apply", "-f", str(directory), "--yes")
    results["delete"] = timed_cnm("delete", "-f", str(directory), "--yes")
    leftovers = [n for n in os.listdir("/run/netns")]
    if leftovers:
        raise SystemExit(f"delete left {len(leftovers)} namespaces")
    return results


def inside(sizes: list[int], repeat: int) -> None:
    isolate()
    work = Path(tempfile.mkdtemp(prefix="cnm-bench-"))
    try:
        print(f"| N | operation | median s (of {repeat}) | runs |")
        print("|---|---|---|---|")
        for n in sizes:
            runs: dict[str, list[float]] = {}
            for attempt in range(repeat):
                sub = work / f"n{n}-r{attempt}"
                sub.mkdir()
                for op, seconds in run_size(n, sub).items():
                    runs.setdefault(op, []).append(seconds)
            for op, values in runs.items():
                shown = ", ".join(f"{v:.3f}" for v in values)
                print(f"| {n} | {op} | {statistics.median(values):.3f} | {shown} |")
    finally:
        shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_isolated(lambda: inside(args.sizes, args.repeat))


if __name__ == "__main__":
    main()

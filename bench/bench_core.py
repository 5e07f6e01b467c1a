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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSIDE = "CNM_BENCH_INSIDE"


def manifests(n: int) -> str:
    docs = [
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: bench}\n"
        "spec: {ipam: [{subnet: 10.200.0.0/16}]}\n"
    ]
    for i in range(n):
        docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i:04d}}}\n")
        docs.append(
            f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i:04d}}}\n"
            f"spec: {{network: bench, sandbox: s{i:04d}}}\n"
        )
    return "---\n".join(docs)


def timed(*args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "reconciler", *args],
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 2):
        raise SystemExit(f"cnm {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def run_size(n: int, work: Path) -> dict[str, float]:
    directory = work / f"n{n}"
    directory.mkdir()
    (directory / "all.yaml").write_text(manifests(n))
    results = {"apply": timed("apply", "-f", str(directory), "--yes")}
    results["noop_plan"] = timed("plan", "-f", str(directory))
    (directory / "extra.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: extra}\n---\n"
        "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: extra}\n"
        "spec: {network: bench, sandbox: extra}\n"
    )
    results["add_one"] = timed("apply", "-f", str(directory), "--yes")
    results["delete"] = timed("delete", "-f", str(directory), "--yes")
    leftovers = [n for n in os.listdir("/run/netns")]
    if leftovers:
        raise SystemExit(f"delete left {len(leftovers)} namespaces")
    return results


def inside(sizes: list[int], repeat: int) -> None:
    for directory in ("/run/netns", "/etc/netns", "/run/cnm"):
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "cnm-bench", directory], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
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
    if os.environ.get(INSIDE) == "1":
        inside(args.sizes, args.repeat)
        return
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (it creates namespaces)")
    env = {**os.environ, INSIDE: "1"}
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation", "private",
                           sys.executable, *sys.argv], env)


if __name__ == "__main__":
    main()

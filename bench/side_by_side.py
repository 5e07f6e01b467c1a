#!/usr/bin/env python3
"""Run one benchmark of this checkout and of another one (the baseline) in turns.

A change's figures mean something only next to the code it replaces, measured
on the same machine in the same hour: this runs `bench/NAME` from each
checkout, alternating, ROUNDS times, and prints the median of each figure per
checkout side by side with their ratio. Both checkouts get their bytecode
compiled first (with PYTHONDONTWRITEBYTECODE set, every command of an
uncompiled checkout would compile all of cnm again).

    python3 bench/side_by_side.py --baseline /path/to/old-checkout --rounds 3 \\
        bench_scale.py --sizes 100 300 1000
    python3 bench/side_by_side.py --baseline /path/to/old-checkout --rounds 3 \\
        bench_watch.py --sizes 1000 --repeat 3

Figures read: bench_scale's per-run JSON (cnm's columns), bench_watch's table
(the reconcile medians).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SCALE_RUN = re.compile(r"^N=(\d+): (\{.*\})$")
_WATCH_ROW = re.compile(r"^\| (\d+) \| ([^|]+) \| \d+ \| ([0-9.]+) ")


def figures(script: str, stdout: str, stderr: str) -> dict[str, float]:
    """name -> seconds, from one run's output."""
    found: dict[str, float] = {}
    if script.startswith("bench_scale"):
        for line in stderr.splitlines():
            match = _SCALE_RUN.match(line.strip())
            if match:
                runs = json.loads(match[2])["cnm"]
                for name in runs[0]:
                    found[f"N={match[1]} {name}"] = statistics.median(r[name] for r in runs)
    else:
        for line in stdout.splitlines():
            match = _WATCH_ROW.match(line)
            if match:
                found[f"N={match[1]} {match[2].strip()}"] = float(match[3])
    return found


def run(checkout: Path, script: str, args: list[str]) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(checkout)
    result = subprocess.run([sys.executable, str(checkout / "bench" / script), *args],
                            cwd=checkout, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{checkout}: {script} failed:\n{result.stderr[-2000:]}")
    return figures(script, result.stdout, result.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("script", help="bench_scale.py or bench_watch.py")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    checkouts = {"baseline": options.baseline.resolve(), "this": REPO}
    for checkout in checkouts.values():
        compileall.compile_dir(checkout / "reconciler", quiet=1)
    seen: dict[str, dict[str, list[float]]] = {label: {} for label in checkouts}
    for number in range(options.rounds):
        for label, checkout in checkouts.items():  # alternating: both see the same machine
            for name, value in run(checkout, options.script, options.args).items():
                seen[label].setdefault(name, []).append(value)
            print(f"round {number + 1}: {label} done", file=sys.stderr, flush=True)
    print(f"| figure | baseline s (median of {options.rounds}) | this s | this / baseline "
          "| baseline, every run | this, every run |")
    print("|---|---|---|---|---|---|")
    for name in seen["this"]:
        before = seen["baseline"].get(name, [float("nan")])
        old, new = statistics.median(before), statistics.median(seen["this"][name])
        runs = [", ".join(f"{v:.3f}" for v in values) for values in (before, seen["this"][name])]
        print(f"| {name} | {old:.3f} | {new:.3f} | {new / old:.2f} | {runs[0]} | {runs[1]} |")


if __name__ == "__main__":
    main()

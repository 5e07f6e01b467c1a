#!/usr/bin/env python3
"""Start-up of the `cnm` command line, as a ratio to a bare interpreter.

Times, in one run and interleaved (so that load from elsewhere hits every row
alike): a bare `python -c pass`, `cnm --version` and `cnm validate -f
examples/quickstart`, each a fresh `python -m reconciler` from the repository,
started from the same interpreter and environment as the bare one (whose own
start-up includes whatever site-packages' .pth files do). Wall-clock medians
and user+system CPU medians, each with its ratio to the bare interpreter's;
the CPU figures move less when other processes share the machine. A row
"libraries" times bench/startup_floor.py: PyYAML, argparse and ipaddress doing the least a
`validate` needs of them, no cnm code, the floor under `validate`'s ratio.

The repository's bytecode is compiled first: an installed cnm has it, and
without it (PYTHONDONTWRITEBYTECODE) every run would compile the sources again.

`--instructions` counts instead the instructions each command executes, under
valgrind (one run each): a figure no other process on the machine can move.

    python3 bench/bench_startup.py --repeat 21
    python3 bench/bench_startup.py --repeat 21 --baseline /path/to/other/checkout
    python3 bench/bench_startup.py --instructions --baseline /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import compileall
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import REPO

BARE = ("-c", "pass")
#: The libraries `validate` stands on, alone (bench/startup_floor.py): what no change to
#: cnm's own code can take away
FLOOR_NAME = "PyYAML + argparse + ipaddress alone (bench/startup_floor.py)"
FLOOR = (str(REPO / "bench" / "startup_floor.py"),)
#: (row name, arguments after the interpreter, the issue's target as a ratio to bare)
COMMANDS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("cnm --version", ("-m", "reconciler", "--version"), 2.0),
    ("cnm validate -f examples/quickstart",
     ("-m", "reconciler", "validate", "-f", "examples/quickstart"), 4.0),
)
#: (wall s, CPU s) of each run
Timings = list[tuple[float, float]]


def run_once(arguments: tuple[str, ...], cwd: Path) -> tuple[float, float] | None:
    """(wall s, CPU s) of one fresh interpreter; None when the command failed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return None if result.returncode != 0 else (wall, cpu)


def measure(checkouts: dict[str, Path], repeat: int) -> tuple[Timings, dict[tuple[str, str],
                                                                             Timings]]:
    """The bare interpreter's runs, and every (checkout, command)'s, `repeat` times round
    robin; a command that fails once (an older cnm without --version) is left empty."""
    for root in checkouts.values():
        compileall.compile_dir(str(root / "reconciler"), quiet=1)
    bare: Timings = []
    runs: dict[tuple[str, str], Timings] = {
        (label, name): [] for label in checkouts for name, _, _ in COMMANDS
    }
    runs[("libraries", FLOOR_NAME)] = []
    failed: set[tuple[str, str]] = set()
    for _ in range(repeat):
        timing = run_once(BARE, REPO)
        if timing is None:
            raise SystemExit(f"{sys.executable} -c pass failed")
        bare.append(timing)
        floor = run_once(FLOOR, REPO)
        if floor is not None:
            runs[("libraries", FLOOR_NAME)].append(floor)
        for label, root in checkouts.items():
            for name, arguments, _ in COMMANDS:
                if (label, name) in failed:
                    continue
                timing = run_once(arguments, root)
                if timing is None:
                    failed.add((label, name))
                    runs[(label, name)] = []
                else:
                    runs[(label, name)].append(timing)
    return bare, runs


def report(bare: Timings, runs: dict[tuple[str, str], Timings], checkouts: dict[str, Path],
           repeat: int) -> None:
    bare_wall = statistics.median(w for w, _ in bare)
    bare_cpu = statistics.median(c for _, c in bare)
    print(f"| checkout | command | wall ms (median of {repeat}) | × bare | CPU ms | × bare "
          "| target |")
    print("|---|---|---|---|---|---|---|")
    print(f"| | bare interpreter ({Path(sys.executable).name} -c pass) | {bare_wall * 1000:.0f} "
          f"| 1 | {bare_cpu * 1000:.0f} | 1 | |")
    floor = runs[("libraries", FLOOR_NAME)]
    if floor:
        wall = statistics.median(w for w, _ in floor)
        cpu = statistics.median(c for _, c in floor)
        print(f"| libraries | {FLOOR_NAME} | {wall * 1000:.0f} | {wall / bare_wall:.2f} | "
              f"{cpu * 1000:.0f} | {cpu / bare_cpu:.2f} | |")
    for label in checkouts:
        for name, _, target in COMMANDS:
            timings = runs[(label, name)]
            goal = f"≤ {target:g}×"
            if not timings:
                print(f"| {label} | {name} | failed | | | | {goal} |")
                continue
            wall = statistics.median(w for w, _ in timings)
            cpu = statistics.median(c for _, c in timings)
            print(f"| {label} | {name} | {wall * 1000:.0f} | {wall / bare_wall:.2f} | "
                  f"{cpu * 1000:.0f} | {cpu / bare_cpu:.2f} | {goal} |")


def instructions(arguments: tuple[str, ...], cwd: Path) -> int | None:
    """Instructions one fresh interpreter executes (valgrind's cachegrind, no cache model)."""
    result = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, *arguments], cwd=cwd, capture_output=True, text=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    return int(found.group(1).replace(",", "")) if result.returncode == 0 and found else None


def report_instructions(checkouts: dict[str, Path]) -> None:
    for root in checkouts.values():
        compileall.compile_dir(str(root / "reconciler"), quiet=1)
    bare = instructions(BARE, REPO)
    if bare is None:
        raise SystemExit("valgrind --tool=cachegrind did not run")
    print("| checkout | command | instructions (millions) | × bare | target |")
    print("|---|---|---|---|---|")
    print(f"| | bare interpreter ({Path(sys.executable).name} -c pass) | {bare / 1e6:.0f} | 1 | |")
    floor = instructions(FLOOR, REPO)
    if floor is not None:
        print(f"| libraries | {FLOOR_NAME} | {floor / 1e6:.0f} | {floor / bare:.2f} | |")
    for label, root in checkouts.items():
        for name, arguments, target in COMMANDS:
            count = instructions(arguments, root)
            shown = "failed |" if count is None else f"{count / 1e6:.0f} | {count / bare:.2f}"
            print(f"| {label} | {name} | {shown} | ≤ {target:g}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="also time another checkout of cnm (e.g. main), interleaved")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under valgrind instead of timing")
    args = parser.parse_args()
    checkouts = {"this": REPO}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline.resolve()
    if args.instructions:
        report_instructions(checkouts)
        return
    report(*measure(checkouts, args.repeat), checkouts, args.repeat)


if __name__ == "__main__":
    main()

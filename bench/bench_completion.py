#!/usr/bin/env python3
"""What shell completion costs: one TAB, and what the other commands pay for it (nothing).

Times, interleaved in one run (so load from elsewhere hits every row alike), a bare
`python -c pass`, `cnm --version`, one completion request as bash makes it on TAB
(`cnm pl<TAB>`: `_ARGCOMPLETE=1`, `COMP_LINE`, `COMP_POINT`; the answer goes to a
file) and `cnm completion bash` (printing the script, done once per shell start-up).
Wall-clock and CPU medians, with ratios to the bare interpreter. Also prints what
importing argcomplete costs (`-X importtime`, its own modules).

    python3 bench/bench_completion.py --repeat 21
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO

Row = tuple[str, tuple[str, ...], dict[str, str]]


def rows(answer: str) -> list[Row]:
    tab = {"_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash", "COMP_LINE": "cnm pl",
           "COMP_POINT": "6", "_ARGCOMPLETE_STDOUT_FILENAME": answer}
    return [
        ("bare interpreter (-c pass)", ("-c", "pass"), {}),
        ("cnm --version", ("-m", "reconciler", "--version"), {}),
        ("one TAB: cnm pl<TAB>", ("-m", "reconciler"), tab),
        ("cnm completion bash", ("-m", "reconciler", "completion", "bash"), {}),
    ]


def run_once(arguments: tuple[str, ...], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO), **env})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_cost(runs: int = 7) -> float:
    """Microseconds of argcomplete's own imports (cumulative, top-level module): the least
    of `runs` fresh interpreters (one reading is at the mercy of the machine's load)."""
    costs = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import argcomplete"],
                                capture_output=True, text=True, check=True)
        found = re.search(r"\|\s+(\d+) \| argcomplete$", result.stderr, re.M)
        if found:
            costs.append(float(found.group(1)))
    return min(costs) if costs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    compileall.compile_dir(str(REPO / "reconciler"), quiet=1)
    with tempfile.TemporaryDirectory() as scratch:
        answer = os.path.join(scratch, "answer")
        table = rows(answer)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in table}
        for _ in range(args.repeat):
            for name, arguments, env in table:
                runs[name].append(run_once(arguments, env))
        with open(answer) as completed:
            assert completed.read().startswith("plan"), "the TAB did not complete `plan`"
    bare_wall = statistics.median(w for w, _ in runs[table[0][0]])
    bare_cpu = statistics.median(c for _, c in runs[table[0][0]])
    print(f"| command | wall ms (median of {args.repeat}) | × bare | CPU ms | × bare |")
    print("|---|---|---|---|---|")
    for name, _, _ in table:
        wall = statistics.median(w for w, _ in runs[name])
        cpu = statistics.median(c for _, c in runs[name])
        print(f"| {name} | {wall * 1000:.0f} | {wall / bare_wall:.2f} | {cpu * 1000:.0f} "
              f"| {cpu / bare_cpu:.2f} |")
    print(f"\nimporting argcomplete (-X importtime, cumulative, least of 7): "
          f"{import_cost() / 1000:.1f} ms")


if __name__ == "__main__":
    main()

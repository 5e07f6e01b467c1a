#!/usr/bin/env python3
"""Where one `cnm` command spends its time at N sandboxed endpoints, phase by phase.

bench_scale times whole commands; this one times their phases, each in a
fresh Python process as the command line runs them (imports included), with
the engine's own functions: import, load, observe, plan, render, execute,
verify (what the plan touched read again and compared with the desired state).
Runs itself inside a throw-away network + mount namespace. Scenarios, on the
bench_scale topology (N sandboxes, one endpoint each, one bridge network):

  noop        nothing to do (a no-op plan, plus what apply adds: nothing)
  add-shared  one more sandbox + endpoint on the big network (its resolver learns the names)
  add-own     one more network, sandbox and endpoint of their own
  delete      everything removed (`cnm delete`'s plan)

    python3 bench/bench_phases.py --size 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import EXTRA_PAIR, REPO, isolate, run_isolated, sandboxed_endpoints

SCENARIOS = ("noop", "add-shared", "add-own", "delete")
PHASES = ("import", "load", "observe", "plan", "render", "execute", "verify")
OWN_NETWORK = (
    "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: own}\n"
    "spec: {ipam: [{subnet: 10.201.0.0/24}]}\n---\n"
    "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: own}\n---\n"
    "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: own}\n"
    "spec: {network: own, sandbox: own}\n"
)


def phases(scenario: str, directory: str) -> dict[str, float]:
    """One command's phases, in this (fresh) process."""
    began = time.perf_counter()
    sys.path.insert(0, str(REPO))
    from reconciler import engine
    from reconciler.kernel.live import LiveObservation
    from reconciler.kernel.session import KernelSession
    from reconciler.render import render_text

    times = {"import": time.perf_counter() - began}
    mark = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        times[name] = now - mark[0]
        mark[0] = now

    manifests = engine.load_manifests([directory])
    lap("load")
    with KernelSession() as session:
        live = LiveObservation("default")
        observed = live.state()
        session.netns_seen.update(live.identities)
        lap("observe")
        if scenario == "delete":
            planned = engine.deletion_plan(manifests, observed)
        else:
            planned = engine.compute_plan(manifests, observed)
        lap("plan")
        render_text(planned.plan)
        lap("render")
        if planned.plan.empty:  # as `cnm apply` does: nothing to execute or verify
            return {**times, "execute": 0.0, "verify": 0.0, "actions": 0}
        touched = planned.touched()
        live.mark_touched(touched)
        engine.execute(planned, session=session, touched=touched)
        lap("execute")
        engine.verify(planned, live, touched)
        lap("verify")
    times["actions"] = len(planned.plan.actions)
    return times


def _cnm(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=REPO,
                            capture_output=True, text=True)
    if result.returncode not in (0, 2):
        raise SystemExit(result.stderr[-2000:])


def _measure(scenario: str, directory: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--phases-of", scenario, str(directory)],
        cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def inside(n: int, repeat: int) -> None:
    isolate()
    settle = min(3.0, n / 300)
    with tempfile.TemporaryDirectory(prefix="cnm-phases-") as work:
        directory = Path(work)
        (directory / "all.yaml").write_text(sandboxed_endpoints(n))
        runs: dict[str, list[dict[str, float]]] = {s: [] for s in SCENARIOS}
        for _ in range(repeat):
            for scenario in SCENARIOS:
                _cnm("apply", "-f", str(directory), "--yes")
                extra = directory / "extra.yaml"
                if scenario in ("add-shared", "add-own"):
                    extra.write_text(EXTRA_PAIR if scenario == "add-shared" else OWN_NETWORK)
                time.sleep(settle)
                runs[scenario].append(_measure(scenario, directory))
                extra.unlink(missing_ok=True)
        _cnm("delete", "-f", str(directory), "--yes")
    print(f"| N | scenario | actions | {' | '.join(PHASES)} | total s |")
    print("|---|---|---|" + "---|" * (len(PHASES) + 1))
    for scenario, measured in runs.items():
        median = {k: statistics.median(r[k] for r in measured) for k in measured[0]}
        total = sum(median[p] for p in PHASES)
        print(f"| {n} | {scenario} | {median['actions']:.0f} | "
              + " | ".join(f"{median[p]:.3f}" for p in PHASES) + f" | {total:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--phases-of", nargs=2, metavar=("SCENARIO", "DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases_of:
        print(json.dumps(phases(*args.phases_of)))
        return
    run_isolated(lambda: inside(args.size, args.repeat))


if __name__ == "__main__":
    main()

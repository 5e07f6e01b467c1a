#!/usr/bin/env python3
"""cnm against an expert iproute2 script, side by side, at several sizes.

N endpoints, each in its own sandbox, on one bridge network. For each N and
each tool, a fresh throw-away network + mount namespace (never the machine's
own network) runs four scenarios: create, observe (cnm: a no-op plan),
add one endpoint, delete everything. The expert script is the one the
performance issue describes: one `ip -batch` for the host (veth peers created
directly in their namespaces), then one `ip -n NS -batch` per sandbox.

    python3 bench/bench_scale.py --sizes 100 300 1000 --write docs/performance.md

`--write` replaces the section between the bench-scale markers of that file
and draws docs/performance-scale.png (needs matplotlib: pip install
'.[bench]').
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import EXTRA_PAIR, REPO, isolate, sandboxed_endpoints, timed, timed_cnm

SCENARIOS = ("create", "observe", "add_one", "delete")
SUBNET = ipaddress.IPv4Network("10.200.0.0/16")
MARK_START, MARK_END = "<!-- bench-scale:start -->", "<!-- bench-scale:end -->"


# --- inside a throw-away namespace --------------------------------------------


def run_cnm(n: int, work: Path) -> dict[str, float]:
    (work / "all.yaml").write_text(sandboxed_endpoints(n, str(SUBNET)))
    times = {"create": timed_cnm("apply", "-f", str(work), "--yes")}
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    times["observe"] = timed_cnm("plan", "-f", str(work))
    (work / "extra.yaml").write_text(EXTRA_PAIR)
    times["add_one"] = timed_cnm("apply", "-f", str(work), "--yes")
    times["delete"] = timed_cnm("delete", "-f", str(work), "--yes")
    times["peak_mb"] = peak_kib / 1024
    return times


def _address(i: int) -> str:
    return f"{SUBNET.network_address + 2 + i}/{SUBNET.prefixlen}"


def expert_create(names: list[tuple[str, str, int]]) -> float:
    gateway = f"{SUBNET.network_address + 1}/{SUBNET.prefixlen}"
    host = [f"netns add {ns}" for ns, _, _ in names]
    if not any(ns == "extra" for ns, _, _ in names):
        host += ["link add br0 type bridge", f"addr add {gateway} dev br0", "link set br0 up"]
    host += [f"link add {veth} type veth peer name eth0 netns {ns}" for ns, veth, _ in names]
    host += [f"link set {veth} master br0 up" for _, veth, _ in names]
    start = time.perf_counter()
    timed(["ip", "-batch", "-"], "\n".join(host) + "\n")
    for ns, _, i in names:
        batch = (f"link set lo up\naddr add {_address(i)} dev eth0\nlink set eth0 up\n"
                 f"route add default via {SUBNET.network_address + 1}\n")
        timed(["ip", "-n", ns, "-batch", "-"], batch)
    return time.perf_counter() - start


def _expert_observe(namespaces: list[str]) -> float:
    start = time.perf_counter()
    timed(["ip", "-j", "-d", "link", "show"])
    timed(["ip", "-j", "addr", "show"])
    for ns in namespaces:
        timed(["ip", "-n", ns, "-j", "-d", "link", "show"])
        timed(["ip", "-n", ns, "-j", "addr", "show"])
        timed(["ip", "-n", ns, "-j", "route", "show"])
    return time.perf_counter() - start


def run_expert(n: int) -> dict[str, float]:
    names = [(f"s{i:04d}", f"v{i:04d}", i) for i in range(n)]
    times = {"create": expert_create(names)}
    times["observe"] = _expert_observe([ns for ns, _, _ in names])
    times["add_one"] = expert_create([("extra", "vextra", n)])
    start = time.perf_counter()
    batch = [f"netns del {ns}" for ns, _, _ in names] + ["netns del extra", "link del br0"]
    timed(["ip", "-batch", "-"], "\n".join(batch) + "\n")
    # The kernel destroys namespaces asynchronously; cnm's delete returns once the
    # veths are gone (it verifies the result), so the script is timed until then too.
    while any(name.startswith("v") for name in os.listdir("/sys/class/net")):
        time.sleep(0.005)
    times["delete"] = time.perf_counter() - start
    return times


def inside(tool: str, n: int) -> None:
    isolate()
    with tempfile.TemporaryDirectory(prefix="cnm-scale-") as work:
        result = run_cnm(n, Path(work)) if tool == "cnm" else run_expert(n)
    print(json.dumps(result))


# --- outside: orchestration, table, plot -------------------------------------


#: Seconds between runs at N = 1000 (less for smaller N): the kernel destroys removed
#: namespaces in the background, and the next run should not pay for that teardown.
SETTLE = 3.0


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def measure(tool: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", sys.executable,
         str(Path(__file__).resolve()), "--inside", tool, str(n)],
        capture_output=True, text=True, env=env, cwd=REPO,
    )
    if out.returncode != 0:
        raise SystemExit(f"{tool} N={n} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def table(results: dict[int, dict[str, dict[str, float]]]) -> str:
    rows = ["| N | scenario | cnm s | expert iproute2 s | cnm / expert |", "|---|---|---|---|---|"]
    for n, by_tool in sorted(results.items()):
        for scenario in SCENARIOS:
            ours, theirs = by_tool["cnm"][scenario], by_tool["expert"][scenario]
            rows.append(f"| {n} | {scenario} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")
    sizes = sorted(results)
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        rows.append("")
        rows.append(f"Scaling, time(N={high}) / time(N={low}) for cnm: " + ", ".join(
            f"{s} {results[high]['cnm'][s] / results[low]['cnm'][s]:.1f}" for s in SCENARIOS))
    rows.append("")
    rows.append("Peak memory of `cnm apply` (max RSS): " + ", ".join(
        f"N={n}: {results[n]['cnm']['peak_mb']:.0f} MB" for n in sizes))
    return "\n".join(rows)


def plot(results: dict[int, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    figure, axes = plt.subplots(1, len(SCENARIOS), figsize=(14, 3.6))
    for axis, scenario in zip(axes, SCENARIOS, strict=True):
        for tool, style in (("cnm", "o-"), ("expert", "s--")):
            axis.plot(sizes, [results[n][tool][scenario] for n in sizes], style, label=tool)
        axis.set_title(scenario)
        axis.set_xlabel("endpoints (N)")
        axis.set_ylabel("seconds")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle("cnm vs an expert iproute2 script (lower is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_section(path: Path, text: str, command: str) -> None:
    section = (f"{MARK_START}\n\nCommand: `{command}`\n\n{text}\n\n"
               f"![cnm vs expert iproute2](performance-scale.png)\n\n{MARK_END}")
    current = path.read_text() if path.exists() else ""
    if MARK_START in current and MARK_END in current:
        before, rest = current.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
        path.write_text(before + section + after)
    else:
        path.write_text(current.rstrip() + "\n\n" + section + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per tool and N; the table shows medians")
    parser.add_argument("--write", type=Path, help="markdown file to update (and a PNG beside)")
    parser.add_argument("--inside", nargs=2, metavar=("TOOL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args.inside[0], int(args.inside[1]))
        return
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (it creates namespaces)")
    results: dict[int, dict[str, dict[str, float]]] = {}
    for n in args.sizes:
        runs: dict[str, list[dict[str, float]]] = {"expert": [], "cnm": []}
        for _ in range(args.repeat):
            for tool in runs:  # alternating, so that both see the same machine
                runs[tool].append(measure(tool, n))
                time.sleep(min(SETTLE, n / 300))
        results[n] = {tool: _medians(r) for tool, r in runs.items()}
        print(f"N={n}: " + json.dumps(runs), file=sys.stderr, flush=True)
    text = table(results)
    print(text)
    if args.write:
        command = "python3 bench/bench_scale.py --sizes " + " ".join(map(str, args.sizes)) \
            + (f" --repeat {args.repeat}" if args.repeat > 1 else "") + f" --write {args.write}"
        plot(results, args.write.parent / "performance-scale.png")
        write_section(args.write, text, command)


if __name__ == "__main__":
    main()

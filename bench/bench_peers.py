#!/usr/bin/env python3
"""cnm against the real peers, side by side in one run: N endpoints, each in its own
network namespace, on one bridge network; create them all, then delete them all.

* cnm: one `cnm apply` of N sandboxes + endpoints, one `cnm delete` (namespaces
  included: cnm creates and removes them itself);
* CNI reference plugins (bridge + host-local, ipMasq on, as cnm masquerades too):
  one ADD exec per container, then one DEL exec per container, as containerd does;
* netavark: one `netavark setup` per container, then one `teardown`, as podman does.

The peers' namespaces are made before their create and removed after their delete,
outside the timing (so the peers' figures leave that cost out and cnm's include it).
Between contenders the benchmark waits until no veth is left in the host namespace,
and every timed phase starts once the CPUs are idle: the kernel tears a namespace
down asynchronously, and the next contender would pay for the previous one's
cleanup. The contenders take turns in every round.

    python3 bench/bench_peers.py --size 100 --repeat 3 [--baseline OTHER_CHECKOUT]

Runs itself in a throw-away network + mount namespace, with tmpfs over cnm's and
the peers' directories (never the machine's own network or files).
"""

from __future__ import annotations

import argparse
import compileall
import ipaddress
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, isolate, run_isolated, sandboxed_endpoints, use_test_helpers

use_test_helpers()
from peers.cni import cni_conflist, cni_exec  # noqa: E402  (driven as the peer tests drive them)
from peers.host import PEER_DIRS, wait_for  # noqa: E402
from peers.netavark import netavark, netavark_network, netavark_options  # noqa: E402

PEERS = ("CNI bridge", "netavark")
TARGET = 0.25  # cnm's time at most this share of the faster peer's


def veths_left() -> int:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                         text=True, check=True).stdout
    return len(out.splitlines())


def settle() -> None:
    """Wait until the kernel has torn down every namespace of the previous contender."""
    if not wait_for(lambda: veths_left() == 0, 120, 0.05):
        raise SystemExit("veths left behind after 120 s")


def make_netns(names: list[str]) -> None:
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in names),
                   text=True, check=True)


def remove_netns(names: list[str]) -> None:
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names),
                   text=True, check=True)


def _cpu_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot (/proc/stat's first line)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def wait_until_idle(share: float = 0.9, window: float = 0.2, limit: float = 30.0) -> None:
    """Wait (at most `limit` s) until the CPUs were at least `share` idle over two windows
    in a row. Waiting for the veths to go is not enough: the kernel's namespace cleanup
    runs on after them in its own workers, and a contender timed during it pays for the
    previous one's teardown."""
    deadline = time.monotonic() + limit
    quiet_windows = 0
    while quiet_windows < 2 and time.monotonic() < deadline:
        idle0, total0 = _cpu_ticks()
        time.sleep(window)
        idle1, total1 = _cpu_ticks()
        busy = total1 == total0 or (idle1 - idle0) / (total1 - total0) < share
        quiet_windows = 0 if busy else quiet_windows + 1


class Phase:
    """Wall-clock seconds of a phase, and the CPU seconds (user + system) of the
    processes it ran and waited for: the CPU figure hardly moves when other work
    shares the cores, the wall clock does. Every contender's phase starts on idle
    CPUs (`wait_until_idle`)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Phase:
        wait_until_idle()
        self._start = (time.perf_counter(), _children_cpu())
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._start[0]
        self.cpu = _children_cpu() - self._start[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


Result = tuple[Phase, Phase]


def cnm_runner(checkout: Path) -> Callable[[int, Path], Result]:
    """`cnm apply` then `cnm delete` of one checkout (a fresh process each, as a user
    runs it). Its sources are compiled first, as an installed package's are: with
    PYTHONDONTWRITEBYTECODE set (as here), every command would compile them again."""
    compileall.compile_dir(str(checkout / "reconciler"), quiet=1)

    def run(n: int, work: Path) -> Result:
        (work / "all.yaml").write_text(sandboxed_endpoints(n, "10.200.0.0/16"))
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        phases = []
        for command in ("apply", "delete"):
            with Phase() as phase:
                done = subprocess.run([sys.executable, "-m", "reconciler", command, "-f",
                                       str(work), "--yes"], cwd=checkout, env=env,
                                      capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"cnm {command} failed:\n{done.stderr[-2000:]}")
            phases.append(phase)
        return phases[0], phases[1]
    return run


def run_cni(n: int, _work: Path) -> Result:
    conflist = cni_conflist("bench", "cni0", "10.201.0.0/16", ports=False)
    names = [f"cni{i:04d}" for i in range(n)]
    make_netns(names)
    results: dict[str, object] = {}
    with Phase() as create:
        for name in names:
            cni_exec("ADD", conflist, name, f"/run/netns/{name}", results=results)
    with Phase() as delete:
        for name in names:
            cni_exec("DEL", conflist, name, f"/run/netns/{name}", results=results)
    remove_netns(names)
    subprocess.run(["ip", "link", "del", "cni0"], check=True)  # CNI leaves its bridge
    return create, delete


def run_netavark(n: int, _work: Path) -> Result:
    network = netavark_network("bench", "podman9", "10.202.0.0/16", "10.202.0.1")
    pool = ipaddress.IPv4Network("10.202.0.0/16")
    names = [f"nv{i:04d}" for i in range(n)]
    options = {name: netavark_options(network, name, str(pool.network_address + 2 + i))
               for i, name in enumerate(names)}
    config = "/run/containers/bench"  # on tmpfs, like podman's /run/containers/networks
    make_netns(names)
    with Phase() as create:
        for name in names:
            netavark("setup", config, f"/run/netns/{name}", options[name])
    with Phase() as delete:
        for name in names:
            netavark("teardown", config, f"/run/netns/{name}", options[name])
    remove_netns(names)
    return create, delete


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def inside(n: int, repeat: int, baseline: Path | None) -> None:
    isolate()
    for directory in ("/var/lib/cnm", *PEER_DIRS):
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "cnm-bench", directory], check=True)
    subprocess.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
    runners: dict[str, Callable[[int, Path], Result]] = {"cnm": cnm_runner(REPO)}
    if baseline is not None:
        runners[f"cnm ({baseline})"] = cnm_runner(baseline)
    runners.update({"CNI bridge": run_cni, "netavark": run_netavark})
    tools = list(runners)
    load_before = load()
    runs: dict[str, list[Result]] = {tool: [] for tool in tools}
    for round_ in range(repeat):
        order = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
        for tool in order:
            with tempfile.TemporaryDirectory() as work:
                settle()
                runs[tool].append(runners[tool](n, Path(work)))
    settle()

    def median(tool: str, index: int, what: str) -> float:
        return float(statistics.median(getattr(run[index], what) for run in runs[tool]))

    print(f"| N | tool | create s (median of {repeat}) | delete s | create CPU s | "
          "delete CPU s | create runs s | delete runs s |")
    print("|---|---|---|---|---|---|---|---|")
    for tool in tools:
        each = ["".join(f"{run[i].wall:.2f}, " for run in runs[tool])[:-2] for i in (0, 1)]
        print(f"| {n} | {tool} | {median(tool, 0, 'wall'):.3f} | {median(tool, 1, 'wall'):.3f} "
              f"| {median(tool, 0, 'cpu'):.3f} | {median(tool, 1, 'cpu'):.3f} | {each[0]} | "
              f"{each[1]} |")
    print()
    for index, phase in enumerate(("create", "delete")):
        faster = min(PEERS, key=lambda tool: median(tool, index, "wall"))
        ratio = median("cnm", index, "wall") / median(faster, index, "wall")
        verdict = "met" if ratio <= TARGET else "NOT met"
        cpu_faster = min(PEERS, key=lambda tool: median(tool, index, "cpu"))
        cpu_ratio = median("cnm", index, "cpu") / median(cpu_faster, index, "cpu")
        print(f"- {phase}: cnm / {faster} (the faster peer) = {ratio:.2f}x "
              f"(target <= {TARGET}x: {verdict}); CPU seconds: cnm / {cpu_faster} = "
              f"{cpu_ratio:.2f}x")
    print(f"- load average (1, 5, 15 min): {load_before} before, {load()} after; "
          f"{os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path,
                        help="another checkout whose cnm runs too, side by side")
    args = parser.parse_args()
    baseline = args.baseline.resolve() if args.baseline else None
    run_isolated(lambda: inside(args.size, args.repeat, baseline))


if __name__ == "__main__":
    main()

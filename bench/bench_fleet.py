#!/usr/bin/env python3
"""The fleet's targets: three simulated hosts x N sandboxes, overlay against a local bridge.

Inside a throw-away network + mount namespace (the "switch"), three hosts (each
its own network and mount namespace, tests/kernel/fleetlib.py) on an underlay
bridge with etcd. In turns, in the same run:

* bridge: every host applies its N sandboxes on a local bridge network, the
  three applies at once; then deletes them;
* overlay: the same N sandboxes per host on one overlay network, applied at
  once (then one more round converges the peers, untimed).

Each host's overlay apply must take <= 1.5x its bridge apply. Then, with
`cnm watch` running on h1 and h2, h3 applies one more sandbox: the time from
its apply's return until its MAC is in h1's and h2's forwarding database
(target <= 1 s). The etcd calls of each round's concurrent applies are
counted too (etcd's metrics, below): a figure the machine's load does not
move. Last, the store round trips of a no-op plan, counted by
etcd's own metrics (gRPC calls the JSON gateway makes), at N and at N/10
sandboxes per host: O(1) means the same count.

    python3 bench/bench_fleet.py --sandboxes 300 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import REPO, isolate, run_isolated, use_test_helpers

use_test_helpers()

from fleetlib import Fleet, SimHost, manifests_dir  # noqa: E402

OVERLAY = "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: ov}\n" \
          "spec: {driver: overlay, ipam: [{subnet: 10.128.0.0/16}]}\n"
BRIDGE = "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: ov}\n" \
         "spec: {ipam: [{subnet: 10.200.0.0/16}]}\n"


def fleet_manifests(network: str, per_host: int, hosts: list[SimHost], extra: int = 0) -> str:
    docs = [network]
    for host in hosts:
        count = per_host + (extra if host is hosts[-1] else 0)
        for i in range(count):
            name = f"{host.name}-s{i:04d}"
            docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: {name}}}\n"
                        f"spec: {{host: {host.name}}}\n")
            docs.append(f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: {name}}}\n"
                        f"spec: {{network: ov, sandbox: {name}}}\n")
    return "---\n".join(docs)


def concurrent_applies(fleet: Fleet, directory: str, *args: str) -> dict[str, float]:
    """Each host's wall-clock seconds for `cnm apply`, all three started at once."""
    # output to files: a plan of hundreds of lines fills a pipe nobody reads meanwhile
    with contextlib.ExitStack() as files:
        logs = {h.name: files.enter_context(tempfile.TemporaryFile("w+")) for h in fleet.hosts}
        return _timed_applies(fleet, directory, logs, args)


def _timed_applies(fleet: Fleet, directory: str, logs: dict[str, Any],
                   args: tuple[str, ...]) -> dict[str, float]:
    started = time.perf_counter()
    running = {h.name: subprocess.Popen(h.cnm_command("apply", "-f", directory, "--yes", *args),
                                        stdout=logs[h.name], stderr=subprocess.STDOUT,
                                        text=True, env=h.cnm_env(fleet.store), cwd=REPO)
               for h in fleet.hosts}
    seconds: dict[str, float] = {}
    pending = dict(running)
    while pending:
        for name, process in list(pending.items()):
            if process.poll() is not None:
                seconds[name] = time.perf_counter() - started
                if process.returncode != 0:
                    logs[name].seek(0)
                    raise SystemExit(f"{name}: apply failed:\n{logs[name].read()[-3000:]}")
                del pending[name]
        time.sleep(0.005)
    return seconds


def delete_all(fleet: Fleet, directory: str) -> None:
    for host in fleet.hosts:
        host.cnm("delete", "-f", directory, "--yes", store=fleet.store, check=True)


def grpc_calls() -> dict[str, float]:
    """etcd's own count of the gRPC calls it served, by method."""
    with urllib.request.urlopen("http://192.0.2.254:2379/metrics", timeout=5) as response:
        text = response.read().decode()
    calls: dict[str, float] = {}
    for match in re.finditer(r'^grpc_server_started_total\{[^}]*grpc_method="(\w+)"[^}]*\} '
                             r'([0-9.e+]+)$', text, re.MULTILINE):
        calls[match[1]] = calls.get(match[1], 0.0) + float(match[2])
    return calls


def calls_since(before: dict[str, float]) -> int:
    """etcd's gRPC calls since `before` (a `grpc_calls()`), all methods."""
    after = grpc_calls()
    return int(sum(after.get(k, 0.0) - before.get(k, 0.0) for k in after))


def plan_round_trips(fleet: Fleet, directory: str) -> int:
    host = fleet.hosts[0]
    before = grpc_calls()
    out = host.cnm("plan", "-f", directory, "--detailed-exitcode", store=fleet.store)
    if out.returncode != 0:
        raise SystemExit(f"the plan is not a no-op:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return calls_since(before)


def watch_latency(fleet: Fleet, work: Path, per_host: int, trials: int) -> list[float]:
    h1, h2, h3 = fleet.hosts
    directory = manifests_dir(work / "watch", fleet_manifests(OVERLAY, per_host, fleet.hosts))
    concurrent_applies(fleet, directory)
    concurrent_applies(fleet, directory)  # converged before the watches start
    watchers = [subprocess.Popen(h.cnm_command("watch", "-f", directory),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=h.cnm_env(fleet.store), cwd=REPO) for h in (h1, h2)]
    latencies = []
    try:
        time.sleep(3.0)  # both watches up and in sync
        for extra in range(1, trials + 1):
            grown = manifests_dir(work / f"grown{extra}",
                                  fleet_manifests(OVERLAY, per_host, fleet.hosts, extra))
            known = {h.name: set(h.fdb("vx-ov")) for h in (h1, h2)}
            h3.cnm("apply", "-f", grown, "--yes", store=fleet.store, check=True)
            returned = time.perf_counter()
            waiting = {h1.name: h1, h2.name: h2}
            while waiting and time.perf_counter() - returned < 10.0:
                for name, host in list(waiting.items()):
                    if set(host.fdb("vx-ov")) - known[name]:
                        del waiting[name]
                time.sleep(0.01)
            if waiting:
                raise SystemExit(f"not programmed on {sorted(waiting)} within 10 s")
            latencies.append(time.perf_counter() - returned)
    finally:
        for watcher in watchers:
            watcher.terminate()
            watcher.wait(timeout=20)
    return latencies


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # the hosts and etcd are ended in `finally`


def inside(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, _stop)
    isolate()
    os.makedirs("/var/lib/cnm", exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "cnm-bench", "/var/lib/cnm"], check=True)
    fleet = Fleet(3)
    work = Path(tempfile.mkdtemp(prefix="cnm-bench-fleet-"))  # seen by every host
    n = args.sandboxes
    try:
        bridge_dir = manifests_dir(work / "bridge", fleet_manifests(BRIDGE, n, fleet.hosts))
        overlay_dir = manifests_dir(work / "overlay", fleet_manifests(OVERLAY, n, fleet.hosts))
        bridge: dict[str, list[float]] = {h.name: [] for h in fleet.hosts}
        overlay: dict[str, list[float]] = {h.name: [] for h in fleet.hosts}
        store_calls: dict[str, list[int]] = {"bridge": [], "overlay": []}
        for _ in range(args.rounds):
            before = grpc_calls()
            for name, seconds in concurrent_applies(fleet, bridge_dir).items():
                bridge[name].append(seconds)
            store_calls["bridge"].append(calls_since(before))
            delete_all(fleet, bridge_dir)
            before = grpc_calls()
            for name, seconds in concurrent_applies(fleet, overlay_dir).items():
                overlay[name].append(seconds)
            store_calls["overlay"].append(calls_since(before))
            concurrent_applies(fleet, overlay_dir)  # peers converge (untimed)
            delete_all(fleet, overlay_dir)
        print(f"## {n} sandboxes per host, 3 hosts applying at once, {args.rounds} rounds "
              "(median seconds)\n")
        print("| host | bridge apply | overlay apply | ratio (target <= 1.5) |")
        print("| --- | --- | --- | --- |")
        for host in fleet.hosts:
            b, o = statistics.median(bridge[host.name]), statistics.median(overlay[host.name])
            print(f"| {host.name} | {b:.2f} | {o:.2f} | {o / b:.2f} |")
        print(f"\netcd calls of the three concurrent applies, per round: bridge "
              f"{store_calls['bridge']}, overlay {store_calls['overlay']}")
        for per_host in (n, max(1, n // 10)):
            directory = manifests_dir(work / f"plan{per_host}",
                                      fleet_manifests(OVERLAY, per_host, fleet.hosts))
            concurrent_applies(fleet, directory)
            concurrent_applies(fleet, directory)
            calls = plan_round_trips(fleet, directory)
            print(f"\nno-op plan at {per_host} sandboxes per host: {calls} etcd calls")
            if per_host != n:
                delete_all(fleet, directory)
        latencies = watch_latency(fleet, work, n, args.trials)
        print(f"\nnew endpoint programmed on both peers running watch, after its host's apply "
              f"returned: median {statistics.median(latencies):.3f} s, max "
              f"{max(latencies):.3f} s over {len(latencies)} trials (target <= 1 s)")
    finally:
        fleet.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandboxes", type=int, default=300, help="per host (default 300)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=5, help="watch latency trials")
    args = parser.parse_args()
    run_isolated(lambda: inside(args))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark of seeing the host's other firewall, side by side with its baseline.

Runs itself inside a throw-away network + mount namespace. Two hosts in the same run,
in turns: the baseline (no foreign table) and a Docker host (Docker 20.10's
iptables-nft layout: FORWARD policy drop, DOCKER-USER), each with N cnm bridge
networks of one sandbox each. Measured with the real command line: apply from
scratch, a no-op plan, delete. Then the pure analysis alone (`host_accept.desire` and
`problems`) for the same N networks against the captured Docker ruleset, first on a
fresh host firewall object and again on the same one (what `cnm watch` repeats).

    python3 bench/bench_host_firewall.py --networks 100 [--repeat 3]
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

from common import REPO, isolate, run_isolated, timed_cnm, use_test_helpers

sys.path.insert(0, str(REPO))
use_test_helpers()


def manifests(n: int) -> str:
    docs = []
    for i in range(n):
        docs.append(f"apiVersion: cnm/v1\nkind: Network\nmetadata: {{name: n{i:04d}}}\n"
                    f"spec: {{ipam: [{{subnet: 10.{100 + i // 250}.{i % 250}.0/24}}]}}\n")
        docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i:04d}}}\n")
        docs.append(f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i:04d}}}\n"
                    f"spec: {{network: n{i:04d}, sandbox: s{i:04d}}}\n")
    return "---\n".join(docs)


def _cycle(path: str) -> dict[str, float]:
    return {
        "apply": timed_cnm("apply", "-f", path, "--yes"),
        "plan (no-op)": timed_cnm("plan", "-f", path, "--detailed-exitcode"),
        "delete": timed_cnm("delete", "-f", path, "--yes"),
    }


def _analysis(n: int) -> dict[str, float]:
    from reconciler.firewall import host_accept
    from reconciler.firewall.foreign import HostFirewall, chains_from_nft
    from reconciler.state import Resource, ResourceKey, State

    fixture = REPO / "tests" / "unit" / "host_firewall" / "docker-forward-drop.json"
    objects = json.loads(fixture.read_text())["nftables"]
    host = HostFirewall(chains_from_nft(objects), {4: True})
    networks = {}
    for i in range(n):
        resource = Resource(ResourceKey("Network", f"n{i:04d}"), "default", {
            "bridge": f"br-n{i:04d}", "subnets": (f"10.{100 + i // 250}.{i % 250}.0/24",)})
        networks[resource.key] = resource
    state = State("default", networks)
    times = {}
    for label in ("analysis, first", "analysis, again"):
        start = time.perf_counter()
        desired = host_accept.desire(state, State("default"), host)
        host_accept.problems(desired, host)
        times[label] = time.perf_counter() - start
    return times


def inside(args: argparse.Namespace) -> None:
    import docker_layout

    isolate()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_text(manifests(args.networks))
        rows: dict[str, dict[str, list[float]]] = {"baseline": {}, "docker": {}}
        for _ in range(args.repeat):
            for host in ("baseline", "docker"):
                if host == "docker":
                    docker_layout.install()
                for label, seconds in _cycle(str(path)).items():
                    rows[host].setdefault(label, []).append(seconds)
                subprocess.run(["nft", "flush", "ruleset"], check=True)
            for label, seconds in _analysis(args.networks).items():
                rows["docker"].setdefault(label, []).append(seconds)
        print(f"N={args.networks} networks (one sandbox each), {args.repeat} rounds, "
              "seconds (min / median)")
        print(f"{'':22} {'baseline':>18} {'Docker host':>18}")
        for label in rows["docker"]:
            cells = []
            for host in ("baseline", "docker"):
                values = rows[host].get(label)
                cells.append(f"{min(values):.3f} / {statistics.median(values):.3f}"
                             if values else "-")
            print(f"{label:22} {cells[0]:>18} {cells[1]:>18}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_isolated(lambda: inside(args))


if __name__ == "__main__":
    main()

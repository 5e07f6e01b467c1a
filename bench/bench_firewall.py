#!/usr/bin/env python3
"""Benchmark of the firewall: N published ports on E endpoints of one bridge network.

Runs itself inside a throw-away network + mount namespace (never the machine's
own network) and measures two things:

* the real `cnm` command line (fresh process each, imports included):
  apply from scratch, no-op plan, apply after changing one port, apply
  repairing a table deleted by hand, delete of everything;
* the nftables part alone, in-process: computing the transaction, committing
  it (one `nft -j -f -` for all rules), reading the table back and turning it
  into attributes, and, for contrast, one `nft` process per rule.

    python3 bench/bench_firewall.py --ports 1000 [--endpoints 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, isolate, run_isolated, timed_cnm


def manifests(ports: int, endpoints: int, first_port: int = 10000) -> str:
    docs = [
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: bench}\n"
        "spec: {ipam: [{subnet: 10.201.0.0/16}]}\n"
    ]
    per = -(-ports // endpoints)
    for e in range(endpoints):
        mine = range(e * per, min(ports, (e + 1) * per))
        listed = ", ".join(
            f"{{containerPort: 80, hostPort: {first_port + p}"
            f"{', protocol: udp' if p % 2 else ''}}}" for p in mine
        )
        docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{e:04d}}}\n")
        docs.append(
            f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{e:04d}}}\n"
            f"spec: {{network: bench, sandbox: s{e:04d}, ports: [{listed}]}}\n"
        )
    return "---\n".join(docs)


def nft_rules() -> int:
    out = subprocess.run(["nft", "-j", "list", "table", "inet", "cnm"], capture_output=True,
                         text=True, check=True).stdout
    return sum(1 for o in json.loads(out)["nftables"] if "rule" in o)


def cli_round(ports: int, endpoints: int, directory: Path) -> dict[str, float]:
    directory.mkdir()
    (directory / "all.yaml").write_text(manifests(ports, endpoints))
    results = {"apply": timed_cnm("apply", "-f", str(directory), "--yes")}
    if nft_rules() < ports:
        raise SystemExit(f"apply left {nft_rules()} rules for {ports} ports")
    results["noop_plan"] = timed_cnm("plan", "-f", str(directory))
    text = (directory / "all.yaml").read_text()
    (directory / "all.yaml").write_text(text.replace("hostPort: 10000}", "hostPort: 9999}", 1))
    results["change_one_port"] = timed_cnm("apply", "-f", str(directory), "--yes")
    subprocess.run(["nft", "delete", "table", "inet", "cnm"], check=True)
    results["repair_deleted_table"] = timed_cnm("apply", "-f", str(directory), "--yes")
    results["delete"] = timed_cnm("delete", "-f", str(directory), "--yes")
    return results


def in_process_round(ports: int, endpoints: int, per_rule: bool) -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    from reconciler import firewall
    from reconciler.desired import build_desired
    from reconciler.kernel import nft
    from reconciler.loader import load_text
    from reconciler.state import State

    desired = build_desired(load_text(manifests(ports, endpoints), "bench.yaml"), "default",
                            State("default"))
    results: dict[str, float] = {}

    def clock(name: str, work: Callable[[], object]) -> object:
        start = time.perf_counter()
        value = work()
        results[name] = time.perf_counter() - start
        return value

    empty = firewall.Ruleset()
    tx = clock("compute transaction", lambda: firewall.transaction(desired, empty))
    assert isinstance(tx, firewall.Transaction)
    clock(f"commit ({tx.added} rules, one nft)", lambda: nft.run_transaction(tx))
    ruleset = clock("read table (nft -j list)", nft.read_ruleset)
    assert isinstance(ruleset, firewall.Ruleset)
    links_only = State("default", {r.key: r for r in desired})
    clock("rules -> attributes", lambda: firewall.attach(links_only, ruleset, {4: True}, {}))
    again = clock("re-plan transaction (empty)", lambda: firewall.transaction(desired, ruleset))
    assert isinstance(again, firewall.Transaction) and again.empty
    subprocess.run(["nft", "delete", "table", "inet", "cnm"], check=True)
    if per_rule:
        rules = [c for c in tx.commands if "rule" in c.get("add", {})]
        skeleton = firewall.Transaction(tuple(c for c in tx.commands if c not in rules))
        nft.run_transaction(skeleton)

        def one_by_one() -> None:
            for command in rules:
                nft.run_transaction(firewall.Transaction((command,)))

        clock(f"commit ({len(rules)} rules, one nft each)", one_by_one)
        subprocess.run(["nft", "delete", "table", "inet", "cnm"], check=True)
    return results


def inside(ports: int, endpoints: int, repeat: int, per_rule: bool) -> None:
    isolate()
    work = Path(tempfile.mkdtemp(prefix="cnm-bench-fw-"))
    try:
        cli: dict[str, list[float]] = {}
        own: dict[str, list[float]] = {}
        for attempt in range(repeat):
            for op, seconds in cli_round(ports, endpoints, work / f"r{attempt}").items():
                cli.setdefault(op, []).append(seconds)
            for op, seconds in in_process_round(ports, endpoints,
                                                per_rule and attempt == 0).items():
                own.setdefault(op, []).append(seconds)
        print(f"| ports | endpoints | operation | median s (of {repeat}) | runs |")
        print("|---|---|---|---|---|")
        for table in (cli, own):
            for op, values in table.items():
                shown = ", ".join(f"{v:.3f}" for v in values)
                print(f"| {ports} | {endpoints} | {op} | {statistics.median(values):.3f} "
                      f"| {shown} |")
    finally:
        shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-rule", action="store_true",
                        help="also time one nft process per rule (slow), once")
    args = parser.parse_args()
    run_isolated(lambda: inside(args.ports, args.endpoints, args.repeat, args.per_rule))


if __name__ == "__main__":
    main()

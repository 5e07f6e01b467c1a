#!/usr/bin/env python3
"""Benchmark of `cnm watch`: how long one reconcile takes on a host with N endpoints.

Runs itself inside a throw-away network + mount namespace (never the machine's
own network). Sets up N endpoints, each in its own sandbox, one bridge network,
one manifest file per sandbox + endpoint (plus the network's file), starts the
real `cnm watch` and times, R times each:

  edit    one file edited: a sandbox's DNS server changes (1 update)
  add     one new file: a network, a sandbox and an endpoint of their own (3 creates)
  remove  that file removed again (3 deletes)
  drift   a host veth deleted by hand (1 create, found through netlink events)
  shared  one more endpoint (in a sandbox of its own) on the big network: its
          sandbox, the endpoint and the resolver's records (3 actions; no other
          sandbox's files change); then its file removed again (3 actions too)

"reconcile" is the time the watcher reports in its log line (load, plan, apply,
verify); "end to end" runs from the file write (or the `ip link del`) to that
log line, so it adds file-event delivery and the debounce.

    python3 bench/bench_watch.py --sizes 1000 [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, isolate, run_isolated

_SECONDS_RE = re.compile(r" in (\d+\.\d+) s$")


def pair(i: int, dns: str | None = None) -> str:
    spec = f"\nspec: {{dns: {{servers: [{dns}]}}}}" if dns else ""
    return (f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i:04d}}}{spec}\n---\n"
            f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i:04d}}}\n"
            f"spec: {{network: bench, sandbox: s{i:04d}}}\n")


def side(r: int) -> str:
    return (f"apiVersion: cnm/v1\nkind: Network\nmetadata: {{name: side{r}}}\n"
            f"spec: {{ipam: [{{subnet: 10.201.{r}.0/24}}]}}\n---\n"
            f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: x{r}}}\n---\n"
            f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: x{r}}}\n"
            f"spec: {{network: side{r}, sandbox: x{r}}}\n")


class Watch:
    def __init__(self, directory: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "watch", "-f", str(directory),
             "--resync", "3600", "--verbose"],
            cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.perf_counter(), line.rstrip("\n")))

    def wait(self, predicate: Callable[[str], bool], after: int, timeout: float = 300.0
             ) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for stamp, line in self.lines[after:]:
                if predicate(line):
                    return stamp, line
            time.sleep(0.002)
        raise SystemExit("watch did not log in time:\n" + "\n".join(x for _, x in self.lines))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def measure(watch: Watch, action: Callable[[], None], marker: str) -> tuple[float, float, str]:
    """(reconcile seconds, end-to-end seconds, log line) of the reconcile `action` causes."""
    after = len(watch.lines)
    start = time.perf_counter()
    action()
    stamp, line = watch.wait(lambda text: marker in text and " in " in text, after)
    if os.environ.get("CNM_BENCH_SHOW"):
        print("  " + line.split(": ", 1)[1], file=sys.stderr)
    match = _SECONDS_RE.search(line)
    if match is None:
        raise SystemExit(f"unexpected log line: {line}")
    time.sleep(1.0)  # let the kernel's own follow-up events (IPv6 DAD, ...) pass
    return float(match[1]), stamp - start, line


def run_size(n: int, repeat: int, work: Path, log: str | None
             ) -> list[tuple[str, int, list[float], list[float]]]:
    directory = work / f"n{n}"
    directory.mkdir()
    (directory / "network.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: bench}\n"
        "spec: {ipam: [{subnet: 10.200.0.0/16}]}\n")
    for i in range(n):
        (directory / f"s{i:04d}.yaml").write_text(pair(i))
    setup = subprocess.run([sys.executable, "-m", "reconciler", "apply", "-f", str(directory),
                            "--yes"], cwd=REPO, capture_output=True, text=True)
    if setup.returncode != 0:
        raise SystemExit(setup.stderr[-2000:])
    watch = Watch(directory)
    started, line = watch.wait(lambda text: "#1 start" in text, 0)
    print(f"# N={n}: watch start (full load + observe + plan): {line.rsplit(' in ', 1)[1]}",
          file=sys.stderr)
    results: dict[str, tuple[int, list[float], list[float]]] = {}

    def record(name: str, actions: int, value: tuple[float, float, str]) -> None:
        entry = results.setdefault(name, (actions, [], []))
        entry[1].append(value[0])
        entry[2].append(value[1])

    target = directory / f"s{n // 2:04d}.yaml"
    try:
        for r in range(repeat):
            record("edit: one sandbox's DNS", 1, measure(
                watch, lambda r=r: target.write_text(pair(n // 2, f"192.0.2.{r + 1}")),
                f"{target.name}: applied"))  # the resolver's upstreams for that sandbox
            extra = directory / f"extra{r}.yaml"
            record("add: file with network+sandbox+endpoint", 3,
                   measure(watch, lambda extra=extra, r=r: extra.write_text(side(r)),
                           f"+Endpoint/x{r}"))
            record("remove: that file", 3,
                   measure(watch, extra.unlink, f"-Endpoint/x{r}"))
            veth = _host_veth(f"s{r:04d}")
            record("drift: host veth deleted by hand", 1, measure(
                watch, lambda veth=veth: subprocess.run(["ip", "link", "del", veth], check=True),
                f"+Endpoint/e{r:04d}"))
            more = directory / "more.yaml"
            record(f"shared: +1 endpoint on the {n}-endpoint network", 3, measure(
                watch, lambda more=more: more.write_text(pair(n)), f"+Endpoint/e{n:04d}"))
            record("shared: that endpoint removed again", 3, measure(
                watch, more.unlink, f"-Endpoint/e{n:04d}"))
    finally:
        watch.stop()
        if log:
            Path(log).write_text("\n".join(line for _, line in watch.lines) + "\n")
    return [(name, actions, rec, e2e) for name, (actions, rec, e2e) in results.items()]


def _host_veth(sandbox: str) -> str:
    out = subprocess.run(["ip", "-n", sandbox, "-o", "link", "show", "eth0"],
                         capture_output=True, text=True, check=True).stdout
    index = re.search(r"eth0@if(\d+)", out)
    if index is None:
        raise SystemExit(f"no veth peer in {sandbox}: {out}")
    host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    for line in host.splitlines():
        number, name = line.split(":")[:2]
        if number == index[1]:
            return name.strip().split("@")[0]
    raise SystemExit(f"host end of {sandbox} not found")


def inside(sizes: list[int], repeat: int, log: str | None) -> None:
    isolate()
    work = Path(tempfile.mkdtemp(prefix="cnm-bench-watch-"))
    try:
        print(f"| N | scenario | actions | reconcile median s (min-max of {repeat}) "
              "| end to end median s | reconcile runs s |")
        print("|---|---|---|---|---|---|")
        for n in sizes:
            for name, actions, rec, e2e in run_size(n, repeat, work, log):
                print(f"| {n} | {name} | {actions} | {statistics.median(rec):.3f} "
                      f"({min(rec):.3f}-{max(rec):.3f}) | {statistics.median(e2e):.3f} "
                      f"| {', '.join(f'{v:.3f}' for v in rec)} |")
    finally:
        shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--log", metavar="FILE", help="write the watcher's whole log here")
    args = parser.parse_args()
    run_isolated(lambda: inside(args.sizes, args.repeat, args.log))


if __name__ == "__main__":
    main()

"""What every benchmark here shares: a throw-away namespace, timed commands, manifests.

Each benchmark runs itself again inside a fresh network + mount namespace
(`reenter_isolated`), then mounts private tmpfs over cnm's state directories
and raises `lo` (`isolate`), so nothing it creates can reach the machine's own
network.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Set in the environment of the copy of a benchmark that runs inside the namespace.
INSIDE = "CNM_BENCH_INSIDE"

#: One more sandbox with an endpoint on the `bench` network ("+1 endpoint").
EXTRA_PAIR = (
    "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: extra}\n---\n"
    "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: extra}\n"
    "spec: {network: bench, sandbox: extra}\n"
)


def use_test_helpers() -> None:
    """Let a benchmark import the kernel tests' helpers (etcd, fleet, peers), which
    themselves import `tests/isolation.py` and cnm: the three directories go on the
    path."""
    for folder in (REPO, REPO / "tests", REPO / "tests" / "kernel"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def is_inside() -> bool:
    return os.environ.get(INSIDE) == "1"


def run_isolated(inside: Callable[[], None]) -> None:
    """Call `inside` in the copy of this command that runs in a throw-away namespace;
    from the outside, start that copy (`reenter_isolated`)."""
    if is_inside():
        inside()
        return
    reenter_isolated()


def reenter_isolated() -> None:
    """Run this very command again inside a fresh network + mount namespace (as root)."""
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (it creates namespaces)")
    env = {**os.environ, INSIDE: "1"}
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation", "private",
                           sys.executable, *sys.argv], env)


def isolate() -> None:
    """Private tmpfs over /run/netns, /etc/netns and /run/cnm; `lo` up.

    sysfs is mounted again too: /sys/class/net lists the links of the namespace
    that mounted it, so without a fresh one it shows the machine's own.
    """
    for directory in ("/run/netns", "/etc/netns", "/run/cnm"):
        os.makedirs(directory, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "cnm-bench", directory], check=True)
    atexit.register(_end_resolvers)
    subprocess.run(["mount", "-t", "sysfs", "cnm-bench", "/sys"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def _end_resolvers() -> None:
    """End the resolvers cnm started here, by pid (a process would outlive the
    benchmark's namespace): the kernel tests' own helper does it."""
    use_test_helpers()
    from isolation import end_resolvers

    end_resolvers()


def timed(command: list[str], stdin: str | None = None) -> float:
    """Seconds `command` took; exits the benchmark if it failed (0 and 2 are success)."""
    start = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{result.stderr[-2000:]}")
    return elapsed


def timed_cnm(*args: str) -> float:
    """Seconds the real `cnm` command line took (a fresh process, imports included)."""
    return timed([sys.executable, "-m", "reconciler", *args])


def sandboxed_endpoints(n: int, subnet: str = "10.200.0.0/16") -> str:
    """Network `bench` and `n` sandboxes s0000.., each with one endpoint e0000.. on it."""
    docs = [
        "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: bench}\n"
        f"spec: {{ipam: [{{subnet: {subnet}}}]}}\n"
    ]
    for i in range(n):
        docs.append(f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i:04d}}}\n")
        docs.append(
            f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i:04d}}}\n"
            f"spec: {{network: bench, sandbox: s{i:04d}}}\n"
        )
    return "---\n".join(docs)

"""The resolver's interpreter started early (kernel/resolver_standby.py), on the real kernel:
the resolver it becomes serves names; an apply that fails or dies before the resolver's
step leaves no resolver process and no resolver file behind.

The processes are found by their command line and their network namespace (this
test's own), independently of cnm's observation.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from faultlib import run

from helpers import cnm

RUN = Path("/run/cnm/resolver/default")
MANIFESTS = """
apiVersion: cnm/v1
kind: Network
metadata: {name: front}
spec:
  ipam: [{subnet: 10.91.0.0/24}]
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: app}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web-front}
spec: {network: front, sandbox: web, ipv4Address: 10.91.0.10, aliases: [www]}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: app-front}
spec: {network: front, sandbox: app}
"""


def _write(tmp_path: Path) -> Path:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "all.yaml").write_text(MANIFESTS)
    (tmp_path / "host-resolv.conf").write_text("")  # no upstream: only cnm's names
    subprocess.run(["mount", "--bind", str(tmp_path / "host-resolv.conf"),
                    "/etc/resolv.conf"], check=True)
    return directory


def _resolver_processes() -> dict[int, list[bytes]]:
    """pid -> command line of every live resolver process in this network namespace."""
    here = os.stat("/proc/self/ns/net").st_ino
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
            netns = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        alive = not stat[stat.rfind(")") + 2:].startswith(("Z", "X"))
        if b"reconciler.resolver.server" in cmdline and netns == here and alive:
            found[int(entry)] = cmdline
    return found


def _none_within(seconds: float) -> dict[int, list[bytes]]:
    deadline = time.monotonic() + seconds
    while (left := _resolver_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_the_resolver_started_from_its_standby_serves_names(tmp_path: Path) -> None:
    manifests = _write(tmp_path)
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    pid = int((RUN / "pid").read_text())
    running = _resolver_processes()
    assert list(running) == [pid]  # the standby became the resolver; nothing else is left
    assert b"--standby" in running[pid]
    done = subprocess.run(["ip", "netns", "exec", "app", "getent", "ahostsv4", "www"],
                          capture_output=True, text=True, timeout=20)
    assert {line.split()[0] for line in done.stdout.splitlines()} == {"10.91.0.10"}
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0
    assert cnm("delete", "-f", str(manifests), "--yes").returncode == 0
    assert _none_within(5) == {}


def test_an_apply_failing_before_the_resolver_step_leaves_no_resolver(tmp_path: Path) -> None:
    manifests = _write(tmp_path)
    # point 1 is "before the first change"; the standby starts right after it
    failed = run("apply", "-f", str(manifests), "--yes", fault="fail@3")
    assert failed.returncode == 1 and "rolled back" in failed.stderr
    assert _resolver_processes() == {}  # released before cnm returned
    assert not RUN.exists() or not any(RUN.iterdir())
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 2


def test_a_killed_apply_leaves_its_standby_to_end_by_itself(tmp_path: Path) -> None:
    manifests = _write(tmp_path)
    killed = run("apply", "-f", str(manifests), "--yes", fault="crash@3")
    assert killed.returncode < 0  # SIGKILL: no finally ran in cnm
    assert _none_within(15) == {}  # its stdin closed with cnm: it ends
    assert not (RUN / "pid").exists()
    assert cnm("apply", "-f", str(manifests), "--yes").returncode == 0
    assert list(_resolver_processes()) == [int((RUN / "pid").read_text())]
    assert cnm("delete", "-f", str(manifests), "--yes").returncode == 0

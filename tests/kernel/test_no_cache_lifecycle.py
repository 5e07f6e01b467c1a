"""A kernel lifecycle with caches and without (CNM_NO_CACHE=1): the same outputs, byte for
byte, and the same kernel as iproute2 shows it, at every step (reconciler/caching.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import EXAMPLE, REPO, iproute2_view, kernel_dump

_THIRD = """
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: web3}
spec: {hostname: web3, dns: {servers: [192.0.2.54]}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: web3-front}
spec: {network: frontend, sandbox: web3, macAddress: "02:42:0a:59:00:0c",
       ports: [{containerPort: 80, hostPort: 8083}]}
"""


def _manifests(tmp_path: Path) -> tuple[Path, Path]:
    first = tmp_path / "first"
    shutil.copytree(EXAMPLE, first, ignore=shutil.ignore_patterns("*.sh"))
    endpoints = first / "endpoints.yaml"  # fixed MACs: the outputs show them
    text = endpoints.read_text()
    if text.count("macAddress") < 2:
        text = text.replace("  sandbox: web2\n",
                            "  sandbox: web2\n  macAddress: 02:42:0a:59:00:0b\n")
    endpoints.write_text(text)
    second = tmp_path / "second"
    shutil.copytree(first, second)
    (second / "third.yaml").write_text(_THIRD)
    return first, second


def _untimed(text: str) -> str:
    """The text with the durations a command reports ("... in 0.15 s.") made equal."""
    return re.sub(r" in \d+\.\d+ s\b", " in N s", text)


def _lifecycle(first: Path, second: Path, no_cache: bool) -> list[object]:
    env = {k: v for k, v in os.environ.items() if k != "CNM_NO_CACHE"}
    if no_cache:
        env["CNM_NO_CACHE"] = "1"
    transcript: list[object] = []
    # cnm turns forwarding on and never off: both runs start from it off (this test's own
    # network namespace), so that both plans show the same host-wide lines
    for switch in ("ipv4/ip_forward", "ipv6/conf/all/forwarding"):
        Path("/proc/sys/net", switch).write_text("0\n")

    def cnm(*args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                                text=True, cwd=REPO, env=env, timeout=120)
        transcript.append([list(args), result.returncode, _untimed(result.stdout),
                           _untimed(result.stderr)])

    cnm("plan", "-f", str(first))
    cnm("apply", "-f", str(first), "--yes")
    transcript.append(iproute2_view())
    cnm("plan", "-f", str(first), "-o", "json")
    cnm("get", "-o", "json")
    cnm("plan", "-f", str(second), "-o", "markdown")
    cnm("apply", "-f", str(second), "--yes")
    transcript.append(iproute2_view())
    cnm("plan", "-f", str(second))
    cnm("get", "-o", "yaml")
    cnm("delete", "-f", str(second), "--yes")
    cnm("get", "-o", "json")
    transcript.append(kernel_dump())
    return transcript


def test_a_lifecycle_is_the_same_with_and_without_caches(tmp_path: Path) -> None:
    first, second = _manifests(tmp_path)
    before = kernel_dump()
    cached = _lifecycle(first, second, no_cache=False)
    uncached = _lifecycle(first, second, no_cache=True)
    assert json.dumps(cached, indent=1) == json.dumps(uncached, indent=1)
    for step in cached:
        if isinstance(step, list):
            assert step[1] == 0, step  # every command succeeded
    assert cached[-1] == before  # and delete left nothing
    assert "web3-front" in json.dumps(cached[7])  # the second apply did add the third endpoint

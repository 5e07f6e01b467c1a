"""The peers benchmark runs end to end at a tiny size, so it never rots (not a timed test)."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO


def test_peers_benchmark_runs_every_contender_at_small_size() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_peers.py"), "--size", "2", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|")[2].strip() for line in result.stdout.splitlines()
            if line.startswith("| 2 |")]
    assert rows == ["cnm", "CNI bridge", "netavark"]
    verdicts = [line.split(":")[0] for line in result.stdout.splitlines()
                if line.startswith("- ") and "the faster peer" in line]
    assert verdicts == ["- create", "- delete"]

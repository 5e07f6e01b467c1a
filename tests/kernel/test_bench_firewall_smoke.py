"""The firewall benchmark runs end to end at a tiny size, so it never rots (not a timed test)."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO


def test_firewall_benchmark_runs_at_small_size() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_firewall.py"), "--ports", "6",
         "--endpoints", "2", "--repeat", "1", "--per-rule"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|")[3].strip() for line in result.stdout.splitlines()
            if line.startswith("| 6 | 2 |")]
    assert rows[:5] == ["apply", "noop_plan", "change_one_port", "repair_deleted_table", "delete"]
    assert any(row.startswith("commit (") and "one nft each" in row for row in rows)

"""bench/bench_startup.py runs end to end with few repeats, so it never rots (not a timed test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_startup_benchmark_prints_a_ratio_for_every_command() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_startup.py"), "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|") for line in result.stdout.splitlines() if line.startswith("| this |")]
    assert [row[2].strip() for row in rows] == ["cnm --version",
                                                "cnm validate -f examples/quickstart"]
    for row in rows:
        assert float(row[4]) > 0 and float(row[6]) > 0  # ratios to the bare interpreter

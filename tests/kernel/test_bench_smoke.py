"""The benchmark harness runs end to end at a tiny size, so it never rots (not a timed test)."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO


def test_core_benchmark_runs_at_small_size() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_core.py"), "--sizes", "2", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 2 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["apply", "noop_plan", "add_one",
                                                          "delete"]


def test_scale_benchmark_runs_both_tools_at_small_size() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_scale.py"), "--sizes", "2", "3"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|")[2].strip() for line in result.stdout.splitlines()
            if line.startswith(("| 2 |", "| 3 |"))]
    assert rows == ["create", "observe", "add_one", "delete"] * 2
    assert "Peak memory of `cnm apply`" in result.stdout


def test_delete_floor_benchmark_runs_both_removals_at_small_size() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_delete_floor.py"), "--sizes", "3",
         "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|")[2].strip() for line in result.stdout.splitlines()
            if line.startswith("| 3 |")]
    assert rows == ["one by one", "held"]


def test_phases_benchmark_runs_every_scenario_at_small_size() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_phases.py"), "--size", "3", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|")[2:4] for line in result.stdout.splitlines()
            if line.startswith("| 3 |")]
    assert [(name.strip(), actions.strip()) for name, actions in rows] == [
        ("noop", "0"), ("add-shared", "3"), ("add-own", "4"), ("delete", "8")]


def test_resolver_benchmark_measures_both_resolvers_at_small_size() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_resolver.py"), "--endpoints", "20",
         "--qps", "200", "--seconds", "0.5", "--rounds", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2:4]
            for line in result.stdout.splitlines() if line.startswith("| ")}
    answered = rows["rate 200/s: answered/s"]
    assert all(float(cell) > 150 for cell in answered)  # both served peer names
    assert all(float(cell) > 0 for cell in rows["+1 endpoint until it resolves ms"])

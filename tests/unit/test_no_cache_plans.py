"""CNM_NO_CACHE=1 turns every speed cache off, and no output changes (reconciler/caching.py).

The golden plans are computed in fresh interpreters, with caches and without,
each case planned twice through one planner's caches (warm the second time);
the outputs must be byte-identical to each other and to the expected files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"

_PLAN_EVERY_CASE = """
import json, sys
from pathlib import Path
from reconciler import caching
from reconciler.caching import PlanCaches
from reconciler.engine import compute_plan
from reconciler.loader import LoadCache
from reconciler.render import render_json, render_markdown, render_text
from reconciler.state import State

outputs = {"enabled": caching.ENABLED, "cases": {}}
for case in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
    observed = State.from_json(json.loads((case / "observed.json").read_text()))
    loader, caches, runs = LoadCache(), PlanCaches(), []
    for _ in range(2):  # the second run may reuse what the first one built
        plan = compute_plan(loader.load([str(case / "manifests")]), observed,
                            caches=caches).plan
        runs.append([render_text(plan), render_json(plan), render_markdown(plan)])
    outputs["cases"][case.name] = runs
json.dump(outputs, sys.stdout)
"""


def _env(no_cache: bool) -> dict[str, str]:
    """This environment, with the cache switch as asked and this checkout importable."""
    env = {k: v for k, v in os.environ.items() if k != "CNM_NO_CACHE"}
    if no_cache:
        env["CNM_NO_CACHE"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return env


def _plans(no_cache: bool) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", _PLAN_EVERY_CASE, str(CASES)],
                            capture_output=True, text=True, env=_env(no_cache), cwd=ROOT,
                            timeout=120, check=True)
    outputs: dict[str, object] = json.loads(result.stdout)
    return outputs


def test_golden_plans_are_the_same_with_and_without_caches() -> None:
    cached, uncached = _plans(no_cache=False), _plans(no_cache=True)
    assert cached["enabled"] is True
    assert uncached["enabled"] is False
    assert cached["cases"] == uncached["cases"]
    cases = cached["cases"]
    assert isinstance(cases, dict) and len(cases) == len([p for p in CASES.iterdir()
                                                          if p.is_dir()])
    for name, runs in cases.items():
        cold, warm = runs
        assert cold == warm, name
        assert cold[0] == (CASES / name / "expected.txt").read_text(), name
        assert cold[1] == (CASES / name / "expected.json").read_text(), name


def test_the_switch_turns_every_cache_off() -> None:
    code = """
import json
from reconciler import caching, desired, ipam
from reconciler.caching import BuildMemo
from reconciler.kernel import nft, rtnl
memo = BuildMemo().next_build()
memo.put("k", (1,), "v")
reused = memo.next_build().get("k", (1,))
lru = [hasattr(f, "cache_info") for f in
       (desired._interface_ip, ipam._interface, rtnl._ip_text, nft._library_in)]
print(json.dumps({"enabled": caching.ENABLED, "reused": reused, "lru": lru}))
"""
    for no_cache, expected in ((False, True), (True, False)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=_env(no_cache), cwd=ROOT, timeout=60, check=True)
        seen = json.loads(out.stdout)
        assert seen["enabled"] is expected
        assert (seen["reused"] == "v") is expected
        assert seen["lru"] == [expected] * 4

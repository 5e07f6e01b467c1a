"""Golden plans: manifests + an observed snapshot -> the exact text and JSON plan.

Each case lives in tests/cases/<scenario>/: `manifests/`, `observed.json` (a
real `cnm observe -o json` snapshot, edited where the scenario needs drift),
`expected.txt`, `expected.json`. After an intended change to the plan format,
regenerate with `CNM_UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_golden.py`
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.engine import compute_plan
from reconciler.loader import load
from reconciler.render import render_json, render_text
from reconciler.state import State

CASES = Path(__file__).resolve().parents[1] / "cases"
UPDATE = os.environ.get("CNM_UPDATE_GOLDEN") == "1"


def _plan_outputs(case: Path) -> tuple[str, str]:
    manifests = load([str(case / "manifests")])
    observed = State.from_json(json.loads((case / "observed.json").read_text()))
    plan = compute_plan(manifests, observed).plan
    return render_text(plan), render_json(plan)


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_golden_plan(case: str) -> None:
    text, document = _plan_outputs(CASES / case)
    if UPDATE:
        (CASES / case / "expected.txt").write_text(text)
        (CASES / case / "expected.json").write_text(document)
    assert text == (CASES / case / "expected.txt").read_text()
    assert document == (CASES / case / "expected.json").read_text()
    # Planned again from scratch (no caches are passed, so nothing built above is reused;
    # tests/unit/test_no_cache_plans.py plans each case warm and with every cache off).
    assert _plan_outputs(CASES / case) == (text, document), "plans must be byte-stable"

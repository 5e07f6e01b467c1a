"""The markdown plan (`cnm plan -o markdown`): golden files and the properties a PR comment needs.

Golden files are `tests/cases/<scenario>/expected.md`, next to the text and JSON
ones; regenerate with `CNM_UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_markdown.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler import render
from reconciler.engine import compute_plan
from reconciler.loader import load
from reconciler.plan import Action, Plan
from reconciler.state import Resource, ResourceKey, State

CASES = Path(__file__).resolve().parents[1] / "cases"
UPDATE = os.environ.get("CNM_UPDATE_GOLDEN") == "1"
GOLDEN = sorted(p.name for p in CASES.iterdir() if (p / "expected.md").exists() or UPDATE)


def _markdown(case: Path) -> str:
    manifests = load([str(case / "manifests")])
    observed = State.from_json(json.loads((case / "observed.json").read_text()))
    return render.render_markdown(compute_plan(manifests, observed).plan)


@pytest.mark.parametrize("case", GOLDEN)
def test_golden_markdown(case: str) -> None:
    text = _markdown(CASES / case)
    if UPDATE:
        (CASES / case / "expected.md").write_text(text)
    assert text == (CASES / case / "expected.md").read_text()
    assert _markdown(CASES / case) == text, "markdown plans must be byte-stable"


def test_every_case_has_a_markdown_golden_file() -> None:
    cases = [p.name for p in CASES.iterdir() if p.is_dir()]
    assert cases and all((CASES / c / "expected.md").exists() for c in cases)


def test_markdown_has_summary_table_and_collapsed_details() -> None:
    text = _markdown(CASES / "replace-subnet")
    lines = text.splitlines()
    assert lines[0] == "<!-- cnm-plan set=default -->"
    assert "**Plan: 0 to create, 3 to update, 0 to delete, 3 to replace.**" in lines
    assert "| | object | change |" in lines
    assert text.index("<details>") > text.index("| `-/+` | Network/frontend |")
    assert text.rstrip().endswith("</details>")
    assert "```diff" in text  # file contents as a diff


def test_empty_plan_says_no_changes() -> None:
    text = render.render_markdown(Plan("default", ()))
    assert "**No changes. The kernel matches the manifests.**" in text
    assert "<details>" not in text


def test_cells_cannot_break_the_table_or_inject_html() -> None:
    resource = Resource(ResourceKey("Sandbox", "a"), "default",
                        {"netns": "x|y<script>", "files.hostname": "h`|\n"})
    plan = Plan("default", (Action("create", resource.key, desired=resource),))
    text = render.render_markdown(plan)
    row = next(line for line in text.splitlines() if line.startswith("| `+` |"))
    assert row.count(" | ") == 2 and "x\\|y&lt;script>" in row
    # elsewhere only inside code spans, where markdown shows HTML as text
    assert text.count("<script>") == text.count("`x\\|y<script>`") == 1


def test_huge_plans_are_cut_to_fit_a_comment() -> None:
    resources = [Resource(ResourceKey("Sandbox", f"s{i:04d}"), "default",
                          {"netns": f"s{i:04d}", "files.hosts": "a\nb\n" * 50})
                 for i in range(1000)]
    plan = Plan("default", tuple(Action("create", r.key, desired=r) for r in resources))
    text = render.render_markdown(plan)
    assert len(text) < 65_536
    assert f"{1000 - render.MARKDOWN_MAX_ROWS} more actions" in text
    assert "not shown in detail" in text

"""`manifests/schema.json` is what `cnm schema` prints now, and the examples satisfy it.

After an intended model change: `python3 -m reconciler schema > manifests/schema.json`
(or `CNM_UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_schema.py`) and commit it.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from reconciler.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "manifests" / "schema.json"
MODELINE = "# yaml-language-server: $schema="


def _printed_schema() -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["schema"]) == 0
    return out.getvalue()


def test_committed_schema_is_up_to_date() -> None:
    current = _printed_schema()
    if os.environ.get("CNM_UPDATE_GOLDEN") == "1":
        COMMITTED.write_text(current)
    assert COMMITTED.read_text() == current, (
        "manifests/schema.json is stale: run `python3 -m reconciler schema > "
        "manifests/schema.json` and commit it"
    )


def _example_files() -> list[Path]:
    roots = [ROOT / "examples", ROOT / "manifests" / "examples", ROOT / "tests" / "cases"]
    return sorted(p for r in roots for p in r.rglob("*.y*ml") if ".github" not in p.parts)


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_satisfy_the_schema_and_their_modeline_points_at_it(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text()))
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents
    for document in documents:  # what an editor checks as the user types
        validator.validate(document)
    first = path.read_text().splitlines()[0]
    if first.startswith(MODELINE):
        target = (path.parent / first[len(MODELINE):]).resolve()
        assert target == COMMITTED, f"{path}: modeline points at {target}"

"""The manifest reference and the JSON Schema describe every field the models have:
docs/manifests.md is what the generator writes now, every schema property has a
description (shared with `cnm schema` from reconciler/field_docs.py), every example
validates, and every example manifest names the schema in its modeline.

After a model change: `python3 -m reconciler.manifest_reference > docs/manifests.md`
and `python3 -m reconciler schema > manifests/schema.json` (or run the tests with
CNM_UPDATE_GOLDEN=1), and give the new field its line in reconciler/field_docs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from reconciler import model
from reconciler.field_docs import FIELDS
from reconciler.manifest_reference import reference

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "manifests.md"
SCHEMA = ROOT / "manifests" / "schema.json"
MODELINE = "# yaml-language-server: $schema="


def _schema() -> dict[str, Any]:
    """The schema as the real console script prints it."""
    result = subprocess.run([sys.executable, "-m", "reconciler", "schema"], capture_output=True,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            timeout=60)
    assert result.returncode == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def test_the_committed_reference_is_what_the_generator_writes() -> None:
    current = reference()
    if os.environ.get("CNM_UPDATE_GOLDEN") == "1":
        DOC.write_text(current)
    assert DOC.read_text() == current, (
        "docs/manifests.md is stale: python3 -m reconciler.manifest_reference > docs/manifests.md")


def _paths(cls: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field path under a model, as the user writes it, read from pydantic itself
    (not from the schema the generator walks)."""
    paths = []
    for name, info in cls.model_fields.items():
        path = prefix + (info.validation_alias if isinstance(info.validation_alias, str)
                         else model._alias(name))
        paths.append(path)
        nested = [t for t in _types(info.annotation) if isinstance(t, type)
                  and issubclass(t, BaseModel)]
        for inner in nested:
            listed = "list" in str(info.annotation)
            paths += _paths(inner, path + ("[]." if listed else "."))
    return paths


def _types(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [t for arg in args for t in _types(arg)]


@pytest.mark.parametrize("kind", ["Network", "Sandbox", "Endpoint"])
def test_every_field_of_the_models_is_in_the_reference(kind: str) -> None:
    doc = DOC.read_text()
    section = doc.split(f"\n## {kind}\n", 1)[1].split("\n## ", 1)[0]
    missing = [p for p in _paths(model.MODELS[kind]) if f"| `{p}` |" not in section]
    assert missing == []


def _properties(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, prop, body) for name, definition in schema["$defs"].items()
            for prop, body in definition.get("properties", {}).items()]


def test_every_schema_property_has_a_description() -> None:
    properties = _properties(_schema())
    assert len(properties) >= 48  # the issue counted 48; more as fields are added
    undescribed = [f"{name}.{prop}" for name, prop, body in properties
                   if len(body.get("description", "")) < 10]
    assert undescribed == [], "give them a line in reconciler/field_docs.py"


def test_field_docs_describe_only_fields_that_exist() -> None:
    schema = _schema()
    ghosts = [f"{name}.{prop}" for name, fields in FIELDS.items() for prop in fields
              if prop not in schema["$defs"].get(name, {}).get("properties", {})]
    assert ghosts == []


def test_every_example_validates_against_its_property() -> None:
    schema = _schema()
    checked = 0
    for _name, _prop, body in _properties(schema):
        for example in body.get("examples", []):
            rules = {**body, "$defs": schema["$defs"]}
            jsonschema.Draft202012Validator(rules).validate(example)
            checked += 1
    assert checked >= 20


def test_the_committed_schema_describes_too() -> None:
    assert json.loads(SCHEMA.read_text()) == _schema()


def _example_manifests() -> list[Path]:
    roots = [ROOT / "examples", ROOT / "manifests" / "examples"]
    return sorted(p for r in roots for p in r.rglob("*.y*ml") if ".github" not in p.parts)


@pytest.mark.parametrize("path", _example_manifests(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_manifest_names_the_schema(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(MODELINE), f"{path}: first line must be the modeline"
    assert (path.parent / first[len(MODELINE):]).resolve() == SCHEMA

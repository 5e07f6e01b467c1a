"""The JSON Schema of the manifests, for editors (`manifests/schema.json`) and `cnm schema`.

Every property carries its description and examples from `field_docs` (the same
table docs/manifests.md is generated from).

Apart from `reconciler.model` because only `cnm schema` and its test need it,
and generating it costs pydantic's JSON Schema machinery.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.field_docs import FIELDS
from reconciler.model import MODELS, Endpoint, Manifest, Network, Sandbox


def json_schema() -> dict[str, Any]:
    """One JSON Schema (draft 2020-12) for any manifest document, for editors and `cnm schema`.

    Python defaults `apiVersion` and `kind` for convenience, but a YAML document
    must spell them out, so the schema lists them as required.
    """
    adapter: TypeAdapter[Manifest] = TypeAdapter(
        Annotated[Network | Sandbox | Endpoint, Field(discriminator="kind")]
    )
    schema = adapter.json_schema(by_alias=True, mode="validation")
    for kind in MODELS:
        definition = schema["$defs"][kind]
        required = ["apiVersion", "kind", "metadata"]
        if "spec" in definition.get("required", []):
            required.append("spec")
        definition["required"] = required
    _describe(schema["$defs"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cnm manifest (cnm/v1)",
        **schema,
    }


def _describe(definitions: dict[str, Any]) -> None:
    """Each property's description and examples (a property field_docs lacks stays without:
    tests/unit/test_manifest_docs.py names it)."""
    for model, definition in definitions.items():
        docs = FIELDS.get(model, {})
        for name, body in definition.get("properties", {}).items():
            doc = docs.get(name)
            if doc is None:
                continue
            body["description"] = doc.description
            if doc.examples:
                body["examples"] = list(doc.examples)

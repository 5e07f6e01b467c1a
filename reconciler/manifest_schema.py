"""The JSON Schema of the manifests, for editors (`manifests/schema.json`) and `cnm schema`.

Apart from `reconciler.model` because only `cnm schema` and its test need it,
and generating it costs pydantic's JSON Schema machinery.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

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
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cnm manifest (cnm/v1)",
        **schema,
    }

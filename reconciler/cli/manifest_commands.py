"""`cnm validate` and `cnm schema`: the manifests alone, no kernel, no privileges."""

from __future__ import annotations

import argparse
import json

from reconciler.cli.options import add_files
from reconciler.cli.output import EXIT_OK, load
from reconciler.cli.parser import Commands


def register(commands: Commands) -> None:
    validate = commands.add(
        "validate", cmd_validate, summary="check manifests (no privileges needed)",
        description="Check the manifests: the schema of every object and the rules between "
                    "objects (names, addresses, references). Every problem is reported at once, "
                    "as file:line: object: field: what is wrong. Reads no kernel state and needs "
                    "no privileges.",
        example="cnm validate -f manifests/\ncat network.yaml | cnm validate -f -",
    )
    add_files(validate)
    commands.add(
        "schema", cmd_schema, summary="print the JSON Schema of the manifests",
        description="Print the JSON Schema of the manifests (every field described), for "
                    "editors and other tools. The repository keeps the same schema at "
                    "manifests/schema.json; a manifest names it on its first line: "
                    "# yaml-language-server: $schema=PATH/TO/manifests/schema.json",
        example="cnm schema > schema.json",
    )


def cmd_validate(args: argparse.Namespace) -> int:
    manifests = load(args.paths)
    count = len(manifests.networks) + len(manifests.sandboxes) + len(manifests.endpoints)
    print(f"Valid: {count} objects ({len(manifests.networks)} networks, "
          f"{len(manifests.sandboxes)} sandboxes, {len(manifests.endpoints)} endpoints).")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from reconciler.manifest_schema import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK

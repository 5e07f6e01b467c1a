"""`cnm validate` and `cnm schema`: the manifests alone, no kernel, no privileges."""

from __future__ import annotations

import argparse
import json

from reconciler.cli.options import add_files
from reconciler.cli.output import EXIT_OK, load
from reconciler.cli.parser import Commands


def register(commands: Commands) -> None:
    validate = commands.add("validate", cmd_validate,
                            summary="check manifests (no privileges needed)")
    add_files(validate)
    commands.add("schema", cmd_schema, summary="print the JSON Schema of the manifests")


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

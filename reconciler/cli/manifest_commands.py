"""`cnm validate` and `cnm schema`: the manifests alone, no kernel, no privileges."""

from __future__ import annotations

import argparse
import json
import sys

from reconciler.cli.options import add_files
from reconciler.cli.output import EXIT_OK, say
from reconciler.cli.parser import Commands


def register(commands: Commands) -> None:
    validate = commands.add(
        "validate", cmd_validate, summary="check manifests (no privileges needed)",
        description="Check the manifests: the schema of every object and the rules between "
                    "objects (names, addresses, references). Every problem is reported at once, "
                    "as file:line: object: field: what is wrong. Reads no kernel state and needs "
                    "no privileges, so a network no manifest defines (another apply set's, "
                    "which plan and apply look for in the kernel) is accepted and noted.",
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
    # Without pydantic unless a problem needs its wording (reconciler/quick_load.py).
    # A network no manifest defines may be another apply set's, which only plan and
    # apply can look for in the kernel: valid here, and said so (docs/contract.md).
    from reconciler.quick_load import load as load_manifests

    manifests = load_manifests(args.paths, stdin=sys.stdin)
    count = len(manifests.networks) + len(manifests.sandboxes) + len(manifests.endpoints)
    print(f"Valid: {count} objects ({len(manifests.networks)} networks, "
          f"{len(manifests.sandboxes)} sandboxes, {len(manifests.endpoints)} endpoints).")
    for endpoint in manifests.endpoints.values():
        if endpoint.spec.network not in manifests.networks:
            source = manifests.source_of(endpoint.key)
            where = source.file if source.line is None else f"{source.file}:{source.line}"
            say(f"{where}: {endpoint.key}: spec.network: network \"{endpoint.spec.network}\" is "
                "not in these manifests; plan and apply look for it among the networks "
                "other apply sets own in the kernel")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from reconciler.manifest_schema import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK

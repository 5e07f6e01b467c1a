"""`cnm observe`, `cnm export`: what the kernel shows of an apply set (`cnm get`:
get_command.py)."""

from __future__ import annotations

import argparse
import json
import sys

from reconciler.cli.options import add_common
from reconciler.cli.output import EXIT_OK, observed_from_file, require_privileges, say
from reconciler.cli.parser import Commands


def register(commands: Commands) -> None:
    observe = commands.add(
        "observe", cmd_observe, summary="dump the observed state of a set (for --observed)",
        description="Print the observed state of an apply set as JSON: a snapshot that "
                    "`cnm plan --observed FILE` and `cnm export --observed FILE` read where "
                    "there is no root or no such kernel (a CI job, a laptop).",
        example="cnm observe -o json > snapshot.json\n"
                "cnm plan -f manifests/ --observed snapshot.json   # elsewhere, no root",
    )
    observe.add_argument("-o", "--output", choices=["json"], default="json",
                         help="json, the snapshot format (the only one)")
    add_common(observe)

    export = commands.add(
        "export", cmd_export, summary="the owned objects as manifests (round-trips)",
        description="Print the objects of an apply set as manifests: applying them plans no "
                    "change. Objects the manifests cannot describe are left out with a warning.",
        example="cnm export > manifests/exported.yaml",
    )
    add_common(export)
    export.add_argument("--mac", action="store_true",
                        help="also pin each endpoint's current MAC address")
    export.add_argument("--observed", metavar="FILE",
                        help="export from a snapshot of `cnm observe -o json` (no root needed)")


def cmd_observe(args: argparse.Namespace) -> int:
    from reconciler import engine

    require_privileges(args)
    print(json.dumps(engine.observe_set(args.set_name).to_json(), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from reconciler import engine
    from reconciler.export import export_state

    if args.observed:
        state = observed_from_file(args.observed, args.set_name)
    else:
        require_privileges(args)
        state = engine.observe_set(args.set_name)
    result = export_state(state, with_mac=args.mac)
    sys.stdout.write(result.yaml(args.set_name))
    sys.stdout.flush()
    for warning in result.warnings:
        say(f"cnm export: warning: {warning}")
    return EXIT_OK

"""`cnm get`, `cnm observe`, `cnm export`: what the kernel shows of an apply set."""

from __future__ import annotations

import argparse
import json
import sys

from reconciler.cli.options import add_common
from reconciler.cli.output import EXIT_OK, observed_from_file, require_privileges, say
from reconciler.cli.parser import Commands

KIND_WORDS = {"networks": "Network", "sandboxes": "Sandbox", "endpoints": "Endpoint"}


def register(commands: Commands) -> None:
    get = commands.add(
        "get", cmd_get, summary="list the owned objects the kernel shows",
        description="List the objects of an apply set that the kernel shows, read from the "
                    "kernel alone (the owner markers), with what each is there.",
        example="cnm get\ncnm get endpoints -o json",
    )
    get.add_argument("kind", nargs="?", choices=sorted(KIND_WORDS), default=None,
                     help="only objects of this kind (default: all)")
    get.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text",
                     help="a table (default), or the objects as JSON or YAML")
    add_common(get)

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


def cmd_get(args: argparse.Namespace) -> int:
    from reconciler import engine
    from reconciler.render import describe
    from reconciler.yaml_documents import dump_yaml

    require_privileges(args)
    state = engine.observe_set(args.set_name)
    kind = KIND_WORDS.get(args.kind) if args.kind else None
    order = {k: i for i, k in enumerate(KIND_WORDS.values())}
    resources = sorted(
        (r for r in state if kind is None or r.key.kind == kind),
        key=lambda r: (order[r.key.kind], r.key.name),
    )
    if args.output == "json":
        print(json.dumps([r.to_json() for r in resources], indent=2))
    elif args.output == "yaml":
        sys.stdout.write(dump_yaml([r.to_json() for r in resources]))
    else:
        rows = [(str(r.key), describe(r)) for r in resources]
        width = max([len(k) for k, _ in rows] + [len("OBJECT")]) + 2
        print("OBJECT".ljust(width) + "KERNEL")
        for key, text in rows:
            print(key.ljust(width) + text)
    return EXIT_OK


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

"""`cnm get`: the objects of every apply set (or of one, `--set`), and `cnm get sets`.

Every set's objects are listed with a SET column, so what the Python API made
(set `api`) is as visible as what manifests made (set `default`). `cnm get
sets` lists the sets and how many objects of each kind they own; `-o mermaid`
draws the whole host (`mermaid.host_diagram`). The sets are found from the
kernel's ownership markers (`kernel/sets.py`); each is then observed as one
command observes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.cli.parser import Commands

if TYPE_CHECKING:
    from reconciler.state import Resource, State

KIND_WORDS = {"networks": "Network", "sandboxes": "Sandbox", "endpoints": "Endpoint",
              "resolvers": "Resolver"}
OUTPUTS = ("text", "json", "yaml", "mermaid")


def register(commands: Commands) -> None:
    parser = commands.add("get", cmd_get, summary="list the owned objects of every apply set")
    # Set here, not as add()'s keywords, so that this works with either Commands.add.
    parser.description = ("List the objects every apply set owns, as the kernel shows them\n"
                          "(read from the ownership markers alone), with a SET column;\n"
                          "`get sets` lists the sets and their counts, `-o mermaid` draws\n"
                          "the whole host.")
    parser.epilog = ("example:\n  cnm get\n  cnm get endpoints --set api -o json\n"
                     "  cnm get sets\n  cnm get -o mermaid > host.mmd")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("kind", nargs="?", choices=[*sorted(KIND_WORDS), "sets"], default=None,
                        help="one kind of object, or `sets`: the apply sets and their counts")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="text",
                        help="mermaid: a diagram of the networks, sandboxes and endpoints")
    parser.add_argument("--set", dest="set_name", default=None, metavar="NAME",
                        help="only this apply set (default: every set the kernel holds)")


def observed_sets(set_name: str | None) -> list[State]:
    """The observed state of `set_name`, or of every set the kernel holds objects of."""
    from reconciler import engine
    from reconciler.kernel.session import require_privileges
    from reconciler.kernel.sets import apply_sets

    require_privileges("get")
    names = [set_name] if set_name is not None else apply_sets()
    return [engine.observe_set(name) for name in names]


def _rows(states: Sequence[State], kind: str | None) -> list[Resource]:
    order = {k: i for i, k in enumerate(KIND_WORDS.values())}
    return sorted(
        (r for state in states for r in state if kind is None or r.key.kind == kind),
        key=lambda r: (r.set_name, order.get(r.key.kind, 9), r.key.name),
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) + 2 for i in range(len(header) - 1)]
    lines = ["".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
             + row[-1] for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def set_counts(states: Sequence[State]) -> list[dict[str, object]]:
    """One entry per set: its name and how many objects of each kind it owns."""
    return [
        {"set": state.set_name,
         **{word: len(state.of_kind(kind)) for word, kind in KIND_WORDS.items()},
         "objects": len(state)}
        for state in sorted(states, key=lambda s: s.set_name)
    ]


def cmd_get(args: argparse.Namespace) -> int:
    from reconciler.render import describe
    from reconciler.yaml_documents import dump_yaml

    states = observed_sets(args.set_name)
    if args.output == "mermaid":
        from reconciler.mermaid import host_diagram

        sys.stdout.write(host_diagram(states))
        return 0
    if args.kind == "sets":
        counts = set_counts(states)
        if args.output == "json":
            print(json.dumps(counts, indent=2))
        elif args.output == "yaml":
            sys.stdout.write(dump_yaml(counts))
        else:
            header = ["SET", *(w.upper() for w in KIND_WORDS), "OBJECTS"]
            sys.stdout.write(_table(header, [[str(c[h.lower()]) for h in header]
                                             for c in counts]))
        return 0
    resources = _rows(states, KIND_WORDS.get(args.kind) if args.kind else None)
    if args.output == "json":
        print(json.dumps([r.to_json() for r in resources], indent=2))
    elif args.output == "yaml":
        sys.stdout.write(dump_yaml([r.to_json() for r in resources]))
    else:
        sys.stdout.write(_table(["SET", "OBJECT", "KERNEL"],
                                [[r.set_name, str(r.key), describe(r)] for r in resources]))
    return 0

"""The `cnm` argument parser, built from the command groups that register into it.

Each command group is a module of this package with a `register(commands)`
function; `COMMAND_GROUPS` lists them in the order `cnm --help` shows their
commands. Adding a command is a new module with `register` and one line in
`COMMAND_GROUPS`; adding a flag to every command that works on an apply set is
one line in `options.add_common`.

Only argparse is imported here and by the group modules at their top: the
parser is built for every command, `cnm --version` included, so a handler
imports its machinery when it runs (docs/architecture.md, "Start-up").
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from reconciler import __version__

#: A command's handler: the parsed arguments in, the exit code out.
Handler = Callable[[argparse.Namespace], int]

#: The modules that register commands, in the order `cnm --help` lists them.
COMMAND_GROUPS = (
    "reconciler.cli.manifest_commands",
    "reconciler.cli.change_commands",
    "reconciler.cli.state_commands",
    "reconciler.cli.watch_command",
    "reconciler.fleet.cluster_cli",
    "reconciler.fleet.cli",  # --host/--store on plan/apply/delete/watch
)


class CnmArgumentParser(argparse.ArgumentParser):
    """argparse with cnm's conventions for usage errors."""


class Commands:
    """What a command group registers into: one `add` per command."""

    def __init__(self, subparsers: argparse._SubParsersAction[CnmArgumentParser]) -> None:
        self._subparsers = subparsers

    def add(self, name: str, handler: Handler, *, summary: str) -> CnmArgumentParser:
        """A new subcommand `cnm NAME`, run by `handler`; add its flags to what it returns."""
        parser = self._subparsers.add_parser(name, help=summary)
        parser.set_defaults(handler=handler)
        return parser


def build_parser() -> CnmArgumentParser:
    parser = CnmArgumentParser(prog="cnm", description="Declarative container networks.")
    parser.add_argument("--version", action="version", version=f"cnm {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = Commands(subparsers)
    for module in COMMAND_GROUPS:
        importlib.import_module(module).register(commands)
    return parser


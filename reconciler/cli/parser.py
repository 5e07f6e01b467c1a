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
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, cast

from reconciler import __version__

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

#: The exit code of a usage error (docs/cli.md, "Exit codes").
EXIT_USAGE = 1

_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")

#: A command's handler: the parsed arguments in, the exit code out.
Handler = Callable[[argparse.Namespace], int]

#: The modules that register commands, in the order `cnm --help` lists them.
COMMAND_GROUPS = (
    "reconciler.cli.manifest_commands",
    "reconciler.cli.change_commands",
    "reconciler.cli.state_commands",
    "reconciler.cli.get_command",
    "reconciler.cli.show_command",
    "reconciler.cli.watch_command",
    "reconciler.fleet.cluster_cli",
    "reconciler.cli.completion",
    "reconciler.fleet.cli",  # --host/--store on plan/apply/delete/watch
)


class CnmArgumentParser(argparse.ArgumentParser):
    """argparse with cnm's exit code for usage errors: 1, like every other error (2 is
    what `--detailed-exitcode` means by "changes", so a typo must not look like it)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """Help, usage and version written like any other output: a reader that went away
        (`cnm --help | head -1`) ends the command with 1 on every Python. (argparse of
        3.11.2 lets the BrokenPipeError through, later 3.11 releases drop it silently.)"""
        if message:
            (file if file is not None else sys.stderr).write(message)


class CommandParser(CnmArgumentParser):
    """The parser of one command: a flag it does not know is its own usage error.

    (argparse hands a subcommand's unknown flags back to the top-level parser,
    which would print `cnm`'s usage for `cnm plan --bogus`.)
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        unknown = self._unknown_flag(sys.argv[1:] if args is None else args)
        if unknown is not None:  # before argparse's own "required" complaints
            self.error(f"unrecognized arguments: {unknown}")
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def _unknown_flag(self, args: Sequence[str]) -> str | None:
        """The first argument that looks like a flag of no option of this command."""
        known = set(self._option_string_actions)
        for arg in args:
            if arg == "--":
                return None
            if not arg.startswith("-") or arg == "-" or _NUMBER.match(arg):
                continue
            name = arg.split("=", 1)[0]
            abbreviates = name.startswith("--") and any(k.startswith(name) for k in known)
            attached = not name.startswith("--") and name[:2] in known  # -fPATH
            if name not in known and not abbreviates and not attached:
                return arg
        return None


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, but an example section stays as written (its lines are commands)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Unbuilt:
    """Stands in for the parser of a command this run does not invoke: whatever its
    command group adds to it (flags, groups, nested verbs) is dropped, unbuilt."""

    def __getattr__(self, name: str) -> Callable[..., _Unbuilt]:
        return self._dropped

    def _dropped(self, *_: object, **__: object) -> _Unbuilt:
        return self


class Commands:
    """What a command group registers into: one `add` per command.

    With `only`, just that command gets a parser of its own; the others are not
    built (building every command's flags was most of what parsing cost, and a
    command line invokes one). `built` says which were.
    """

    def __init__(self, subparsers: argparse._SubParsersAction[CommandParser],
                 only: str | None = None) -> None:
        self._subparsers = subparsers
        self._only = only

    def built(self, name: str) -> CommandParser | None:
        """The parser of command `name`, if this parser built it."""
        return self._subparsers.choices.get(name)

    def add(self, name: str, handler: Handler, *, summary: str, description: str = "",
            example: str = "") -> CommandParser:
        """A new subcommand `cnm NAME`, run by `handler`; add its flags to what it returns.

        `summary` is its line in `cnm --help`; `description` (default: the summary)
        and `example` (one or more command lines, `# comments` allowed) make its own
        `cnm NAME --help` (tests/unit/test_cli_help.py wants both for every command).
        """
        if self._only is not None and name != self._only:
            return cast(CommandParser, _Unbuilt())
        lines = example.strip("\n").splitlines()
        epilog = "example:\n" + "\n".join("  " + line for line in lines) if lines else None
        parser = self._subparsers.add_parser(
            name, help=summary, description=description or summary, epilog=epilog,
            formatter_class=_HelpFormatter,
        )
        parser.set_defaults(handler=handler)
        return parser


def build_parser(argv: Sequence[str] | None = None) -> CnmArgumentParser:
    """`cnm`'s parser. Given the command line it will parse (`argv`), it builds only
    the command that line invokes, which parses that line exactly as the whole
    parser does: `cnm` itself has no option that takes a value, so the command is
    the first argument unless an option (`--help`, `--version`) comes first, and
    then, as for a name that is no command, every command is built."""
    if argv and argv[0] == "--version":  # argparse prints it and exits on reading it
        return _build(None, groups=())[0]
    invoked = argv[0] if argv and not argv[0].startswith("-") else None
    parser, commands = _build(invoked)
    if invoked is not None and commands.built(invoked) is None:
        parser, _ = _build(None)  # "invalid choice": its message lists every command
    return parser


def _build(only: str | None, groups: Sequence[str] = COMMAND_GROUPS,
           ) -> tuple[CnmArgumentParser, Commands]:
    parser = CnmArgumentParser(
        prog="cnm", formatter_class=_HelpFormatter,
        description="Declarative container networks: Network, Sandbox and Endpoint manifests "
                    "planned against the live kernel and applied.",
        epilog="example:\n"
               "  cnm validate -f manifests/\n"
               "  cnm plan -f manifests/\n"
               "  cnm apply -f manifests/\n\n"
               "`cnm COMMAND --help` shows a command's flags and examples; docs/cli.md has them "
               "all.\nExit codes: 0 success, 1 any error (usage errors too), 2 changes "
               "(`plan --detailed-exitcode`).",
    )
    parser.add_argument("--version", action="version", version=f"cnm {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=CommandParser)
    commands = Commands(subparsers, only)
    for module in groups:
        importlib.import_module(module).register(commands)
    return parser, commands


"""`cnm completion bash|zsh|fish`: shell completion by argcomplete.

The script the shell loads is argcomplete's own (`shellcode`): on
TAB it runs `cnm` with `_ARGCOMPLETE` set, and `cli.main` then hands the
parser to `complete`, which answers from the very parser that parses, so
completion never falls out of step with the commands and flags. argcomplete is
imported only then and by `cnm completion`: no other command loads it
(tests/unit/test_startup.py).
"""

from __future__ import annotations

import argparse
import sys

from reconciler.cli.output import EXIT_OK
from reconciler.cli.parser import CnmArgumentParser, Commands

SHELLS = ("bash", "zsh", "fish")


def register(commands: Commands) -> None:
    completion = commands.add(
        "completion", cmd_completion, summary="print the shell completion script",
        description="Print the script that makes SHELL complete cnm's commands, flags and "
                    "their values. Load it in the shell's start-up file.",
        example="""\
source <(cnm completion bash)                                # bash, in ~/.bashrc
source <(cnm completion zsh)                                 # zsh, in ~/.zshrc
cnm completion fish > ~/.config/fish/completions/cnm.fish    # fish""",
    )
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL",
                            help="bash, zsh or fish")


def cmd_completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["cnm"], shell=args.shell))
    return EXIT_OK


def complete(parser: CnmArgumentParser) -> None:
    """Answer the shell's completion request and leave (argcomplete exits the process)."""
    from argcomplete import autocomplete

    autocomplete(parser, always_complete_options=False)  # flags once a - is typed

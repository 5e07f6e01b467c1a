"""The `cnm` command: argument parsing, output and exit codes, nothing else.

Exit codes: 0 success (plan: no changes), 1 any error, 2 `plan
--detailed-exitcode` found changes or problems. Every error is one line on stderr.

`parser.py` builds the parser from the command groups (`manifest_commands`,
`change_commands`, `state_commands`, `watch_command`), each registering its
commands with their handler. Each handler imports the machinery it needs when
it runs, not when its module loads: building the parser must not import
pydantic, yaml, the engine or the kernel layer, so that `cnm --version` costs
about one interpreter start and `cnm validate` never loads the kernel layer
(docs/performance.md, "Start-up"; bench/bench_startup.py measures it).
"""

from __future__ import annotations

import os
import sys

# Not `from typing import TYPE_CHECKING`: importing typing (like argparse, which the
# parser needs) would cost `cnm --version` more than the rest of it (type checkers
# know this name all the same).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

__all__ = ["main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code. Usage errors, `--help` and `--version` leave by
    SystemExit, as argparse does."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (`cnm completion`)
        from reconciler.cli.completion import complete
        from reconciler.cli.parser import build_parser

        complete(build_parser())
    try:
        if arguments[:1] == ["--version"]:
            _print_version()  # what the parser's own --version does, without argparse
        from reconciler.cli.parser import build_parser

        args = build_parser(arguments).parse_args(arguments)
        code: int = args.handler(args)
        return code
    except BrokenPipeError:
        return _reader_went_away()
    except KeyboardInterrupt:
        from reconciler.cli.output import EXIT_ERROR, say

        say("cnm: interrupted")
        return EXIT_ERROR
    except Exception as exc:
        # `errors` (dataclasses, inspect) loads only when a command fails or needs it,
        # so that `cnm --version` stays about one interpreter start
        from reconciler.cli.output import EXIT_ERROR, say
        from reconciler.errors import CnmError, ManifestError

        if isinstance(exc, ManifestError):
            say(str(exc))
        elif isinstance(exc, CnmError):
            say(f"cnm: {exc.one_line()}")
        else:
            raise
        return EXIT_ERROR


def _print_version() -> NoReturn:
    """`cnm --version`: the line argparse's version action prints (parser.py keeps the
    flag for `--help`; a test holds the two to the same line), then out with 0."""
    from reconciler import __version__

    # argparse writes to stderr when there is no stdout (`cnm --version >&-`)
    (sys.stdout if sys.stdout is not None else sys.stderr).write(f"cnm {__version__}\n")
    raise SystemExit(0)


def _reader_went_away() -> int:
    """stdout's reader closed the pipe (`cnm get | head`): stop quietly, like the tools
    around it, and send what is still buffered nowhere (a flush at exit would raise)."""
    from reconciler.cli.output import EXIT_ERROR

    try:  # noqa: SIM105 (as in run)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_ERROR


def run() -> NoReturn:
    """The `cnm` command: `main()`, then out without tearing the heap down object by object.

    After observing a thousand namespaces the interpreter holds millions of
    objects, and freeing them one by one at exit took ~0.2 s of every command.
    Everything cnm must finish (sockets, the lock, files) is closed by then; the
    output streams are flushed here.
    """
    # cnm validates with pydantic but uses no pydantic plugin; without this, building
    # the first model reads the metadata of every installed distribution to look for
    # plugins (~3 % of `cnm validate`). A user's own setting still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from reconciler.cli import plugin_scan

    plugin_scan.skip_import()  # nor import the scanner that would do nothing
    try:
        code = main()
    except SystemExit as leaving:  # argparse: --help, --version, a usage error
        code = 0 if leaving.code is None else leaving.code if isinstance(leaving.code, int) else 1
    except BrokenPipeError:  # --help into a closed pipe
        code = _reader_went_away()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # what was buffered never reached the reader
        code = code or _reader_went_away()
    except (OSError, ValueError):
        pass
    try:  # noqa: SIM105 (contextlib.suppress: a module every command would load for it)
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: nobody to tell
        pass
    os._exit(code)

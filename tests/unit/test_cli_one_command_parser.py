"""`build_parser(argv)` builds only the command `argv` invokes (cli/parser.py): it must
parse every line, print every help and usage error, exactly as the whole parser does."""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
from typing import Any

import pytest

from reconciler.cli.parser import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return dict(sub.choices)  # type: ignore[arg-type]


def _example_lines() -> list[list[str]]:
    """Every command line of every command's own example, `cnm` left out."""
    lines = []
    for command in _commands().values():
        epilog = command.epilog or ""
        for line in epilog.splitlines()[1:]:
            words = shlex.split(line.split("#", 1)[0])
            if words[:1] == ["cnm"] and len(words) > 1:
                lines.append(words[1:])
    return lines


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[Any, ...]:
    """What parsing `argv` gives: the arguments (handlers by name: the fleet wraps them
    anew on every build), or the exit code and everything printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parsed = vars(parser.parse_args(argv))
        except SystemExit as leaving:
            return ("exit", leaving.code, out.getvalue(), err.getvalue())
    handler = parsed.pop("handler", None)
    return ("parsed", sorted(parsed.items(), key=str), getattr(handler, "__qualname__", None))


def test_every_example_parses_as_with_the_whole_parser() -> None:
    lines = _example_lines()
    assert len(lines) >= len(_commands())
    for argv in lines:
        assert _outcome(build_parser(argv), argv) == _outcome(build_parser(), argv), argv


@pytest.mark.parametrize("argv", [
    ["validate", "--help"], ["apply", "--help"], ["cluster", "status", "--help"],
    ["plan", "--bogus"], ["get", "--detailed-exitcode"], ["plan"], ["bogus"], ["--help"],
    ["--version"], [], ["-h", "validate"], ["apply", "-f", "x", "--lock-timeout", "soon"],
    ["plan", "-f", "m", "--store", "etcd://127.0.0.1:2379", "--host", "h1"],
    ["watch", "-f", "m", "--host", "h2"], ["delete", "-f", "m", "--set", "api", "--yes"],
])
def test_help_usage_errors_and_fleet_flags_are_the_same(argv: list[str]) -> None:
    assert _outcome(build_parser(argv), argv) == _outcome(build_parser(), argv)


def test_only_the_invoked_command_is_built() -> None:
    sub = next(a for a in build_parser(["validate", "-f", "x"])._actions
               if a.dest == "command")
    assert list(sub.choices) == ["validate"]  # type: ignore[arg-type]

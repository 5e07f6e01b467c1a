"""docs/cli.md is what the generator writes from the parser now: every command, every
flag with a meaning, every example. After changing a command or flag:
`python3 -m reconciler.cli.reference > docs/cli.md` (or CNM_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from reconciler.cli.parser import build_parser
from reconciler.cli.reference import reference

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"


def test_the_committed_reference_is_what_the_generator_writes() -> None:
    current = reference()
    if os.environ.get("CNM_UPDATE_GOLDEN") == "1":
        DOC.write_text(current)
    assert DOC.read_text() == current, (
        "docs/cli.md is stale: python3 -m reconciler.cli.reference > docs/cli.md")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_flag_is_documented_with_a_meaning() -> None:
    doc = DOC.read_text()
    for name, parser in _commands().items():
        assert f"\n## cnm {name}\n" in doc
        section = doc.split(f"\n## cnm {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"cnm {name}: {action.option_strings or action.dest} has no help"
            for flag in action.option_strings:
                assert f"`{flag}`" in section, f"cnm {name} {flag}"


def test_the_exit_codes_are_documented() -> None:
    doc = DOC.read_text()
    table = doc.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert [line[4] for line in table.splitlines() if line.startswith("- **")] == \
        ["0", "1", "2"]

"""What several commands print or read: messages, plans, manifests, snapshots."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import CnmError

if TYPE_CHECKING:
    from reconciler.model import Manifests
    from reconciler.plan import Plan
    from reconciler.state import State

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def say(text: str) -> None:
    """A message for the user (stderr: stdout carries only the command's result)."""
    print(text, file=sys.stderr, flush=True)


def load(paths: Sequence[str]) -> Manifests:
    """Load and validate (the loader alone: `cnm validate` needs nothing more)."""
    from reconciler.loader import load as load_manifests

    return load_manifests(paths, stdin=sys.stdin)


def observed_from_file(path: str, set_name: str) -> State:
    from reconciler.state import State

    try:
        data = json.loads(Path(path).read_text())
        state = State.from_json(data)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CnmError(f"{path}: not an observed-state snapshot ({exc})") from exc
    if state.set_name != set_name:
        raise CnmError(f"{path}: snapshot is of apply set '{state.set_name}', not '{set_name}'")
    return state


def print_plan(plan: Plan, output: str) -> None:
    from reconciler.render import render_json, render_markdown, render_text

    renderers = {"json": render_json, "markdown": render_markdown}
    sys.stdout.write(renderers.get(output, render_text)(plan))
    sys.stdout.flush()


def note_debris(observed: State) -> None:
    from reconciler import engine

    debris = engine.pending_debris(observed)
    if debris:
        say(engine.debris_note(debris))

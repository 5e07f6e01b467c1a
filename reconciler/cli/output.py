"""What several commands print or read: messages, plans, manifests, snapshots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

# `cli/__init__.py` imports this module for every command, `cnm --version` included:
# `errors` (dataclasses, inspect), json and pathlib load in the functions that use them.
if TYPE_CHECKING:
    from reconciler.manifest_set import Manifests
    from reconciler.plan import Plan
    from reconciler.state import State

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
NO_CHANGES_IN_SNAPSHOT = "No changes. The snapshot {file} matches the manifests."


def say(text: str) -> None:
    """A message for the user (stderr: stdout carries only the command's result)."""
    print(text, file=sys.stderr, flush=True)


def load(paths: Sequence[str]) -> Manifests:
    """Load and validate (the loader alone: `cnm validate` needs nothing more)."""
    from reconciler.loader import load as load_manifests

    return load_manifests(paths, stdin=sys.stdin)


def load_for_set(args: argparse.Namespace) -> Manifests:
    """`load` for a command that plans against the kernel: an endpoint may join a network
    another apply set owns there (kernel/foreign_networks.py, shared_networks.py)."""
    from reconciler.errors import ManifestError

    if getattr(args, "observed", None):  # offline: the host is not the one planned
        return load(args.paths)
    if "-" not in args.paths:  # (stdin can be read only once)
        try:  # the kernel is read only when the manifests need it (a big host's dump)
            return load(args.paths)
        except ManifestError as exc:
            if not any(p.field == "spec.network" and p.message.startswith("unknown network")
                       for p in exc.problems):
                raise
    from reconciler.kernel.foreign_networks import naming_no_set, networks_elsewhere
    from reconciler.loader import load as load_manifests

    try:
        return load_manifests(args.paths, stdin=sys.stdin,
                              elsewhere=networks_elsewhere(args.set_name))
    except ManifestError as exc:
        raise naming_no_set(exc) from None


def require_privileges(args: argparse.Namespace) -> None:
    """Refuse in one line, naming the command, when it cannot read or change the kernel."""
    from reconciler.kernel.session import require_privileges as check

    check(args.command)


def observed_from_file(path: str, set_name: str) -> State:
    """A snapshot written by `cnm observe -o json` (for --observed)."""
    import json
    from pathlib import Path

    from reconciler.errors import CnmError
    from reconciler.state import State

    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CnmError(f"{path}: no such file (--observed wants a snapshot written by "
                       "`cnm observe -o json`)") from None
    except OSError as exc:
        raise CnmError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        state = State.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CnmError(f"{path}: not an observed-state snapshot ({exc})") from exc
    if state.set_name != set_name:
        raise CnmError(f"{path}: snapshot is of apply set '{state.set_name}', not '{set_name}'")
    return state


def print_plan(plan: Plan, output: str, *, snapshot: str | None = None) -> None:
    """The plan on stdout; a text plan in colour on a terminal (cli/colour.py).

    `snapshot`: the file the plan was made against (`--observed`) instead of the
    kernel, which an empty plan's sentence must then not claim to have seen.
    """
    from reconciler.cli.colour import colour_plan, wanted
    from reconciler.render import NO_CHANGES, render_json, render_markdown, render_text

    renderers = {"json": render_json, "markdown": render_markdown}
    text = renderers.get(output, render_text)(plan)
    if snapshot is not None and plan.empty:
        text = text.replace(NO_CHANGES, NO_CHANGES_IN_SNAPSHOT.format(file=snapshot))
    if output == "text" and wanted(sys.stdout):
        text = colour_plan(text)
    sys.stdout.write(text)
    sys.stdout.flush()


def note_debris(observed: State) -> None:
    from reconciler import engine

    debris = engine.pending_debris(observed)
    if debris:
        say(engine.debris_note(debris))

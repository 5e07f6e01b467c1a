"""What the fleet commands show and ask, as `cnm plan/apply/delete` do without a store:
the plan, the confirmation question, step progress, the closing line.

Kept here, on the public engine, render and progress modules, so that the fleet
commands do not depend on how the command-line package arranges its own helpers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from reconciler import engine
from reconciler.errors import CnmError
from reconciler.manifest_set import Manifests
from reconciler.plan import Plan
from reconciler.pools import DEFAULT_POOLS, AddressPool
from reconciler.state import State

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load(paths: Sequence[str]) -> Manifests:
    from reconciler.loader import load as load_manifests

    return load_manifests(paths, stdin=sys.stdin)


def pools(args: Any) -> tuple[AddressPool, ...]:
    given = getattr(args, "pools", None)
    return tuple(given) if given else DEFAULT_POOLS


def print_plan(plan: Plan, output: str) -> None:
    from reconciler.render import render_json, render_markdown, render_text

    renderers = {"json": render_json, "markdown": render_markdown}
    sys.stdout.write(renderers.get(output, render_text)(plan))
    sys.stdout.flush()


def confirmer(args: Any) -> Callable[[engine.Planned], bool]:
    """Show the plan, then ask unless --yes (refusing without a terminal)."""

    def confirm(planned: engine.Planned) -> bool:
        print_plan(planned.plan, args.output)
        if getattr(args, "dry_run", False):
            return False
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise CnmError("refusing to apply without --yes: stdin is not a terminal")
        return input("Apply these changes? Only 'yes' is accepted: ").strip() == "yes"

    return confirm


def apply_with_progress(
    planner: Callable[[State], engine.Planned], set_name: str, output: str, *,
    lock_timeout: float, confirm: Callable[[engine.Planned], bool], **options: Any,
) -> engine.ApplyResult | engine.Planned:
    from reconciler.progress import ProgressReporter

    reporter = ProgressReporter() if output == "text" else None
    try:
        return engine.apply_planned(planner, set_name, lock_timeout=lock_timeout,
                                    confirm=confirm, progress=reporter, notify=say, **options)
    finally:
        if reporter is not None:
            reporter.close()


def report(result: engine.ApplyResult | engine.Planned, output: str, what: str = "Apply") -> int:
    """The line that ends a fleet apply or delete: the same as the plain commands'."""
    from reconciler.cli.change_commands import report_result

    return report_result(result, output, what)

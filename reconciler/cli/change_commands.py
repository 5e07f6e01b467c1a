"""`cnm plan`, `cnm apply`, `cnm delete`, `cnm confirm`: the commands that plan and change."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.cli.options import add_common, add_files, add_pools, add_safety, pools_of, seconds
from reconciler.cli.output import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    load,
    note_debris,
    observed_from_file,
    print_plan,
    say,
)
from reconciler.cli.parser import Commands
from reconciler.errors import CnmError

if TYPE_CHECKING:
    from reconciler import engine
    from reconciler.plan import Verb
    from reconciler.state import State


def register(commands: Commands) -> None:
    plan = commands.add("plan", cmd_plan, summary="show what apply would change")
    add_files(plan)
    add_common(plan)
    plan.add_argument("-o", "--output", choices=["text", "json", "markdown"], default="text")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 2 when the plan has changes")
    plan.add_argument("--observed", metavar="FILE",
                      help="plan against a snapshot from `cnm observe -o json` (no root needed)")
    add_pools(plan)
    plan.add_argument("-out", "--out", dest="out", metavar="PLANFILE",
                      help="also save the plan; `cnm apply PLANFILE` applies exactly it")

    apply = commands.add("apply", cmd_apply, summary="make the kernel match the manifests")
    apply.add_argument("planfile", nargs="?", metavar="PLANFILE",
                       help="a plan saved by `cnm plan -out`: apply exactly it (instead of -f)")
    add_files(apply, required=False)
    add_common(apply)
    apply.add_argument("-o", "--output", choices=["text", "json"], default="text")
    apply.add_argument("--dry-run", action="store_true", help="only show the plan")
    apply.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--allow-empty", action="store_true",
                       help="allow manifests with no object to prune the whole set")
    apply.add_argument("--lock-timeout", type=seconds, default=60.0, metavar="SECONDS",
                       help="wait this long for another cnm writer (default 60)")
    add_pools(apply)
    add_safety(apply, with_confirm=True)

    delete = commands.add("delete", cmd_delete,
                          summary="remove the objects these manifests describe")
    add_files(delete)
    add_common(delete)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.add_argument("--lock-timeout", type=seconds, default=60.0, metavar="SECONDS",
                        help="wait this long for another cnm writer (default 60)")
    add_safety(delete, with_confirm=False)

    commands.add("confirm", cmd_confirm,
                 summary="keep the changes of a pending `apply --confirm`")


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler import engine, savedplan

    manifests = load(args.paths)
    if args.observed:
        observed = observed_from_file(args.observed, args.set_name)
        planned = engine.compute_plan(manifests, observed, pools_of(args))
    else:
        planned = engine.plan_manifests(manifests, args.set_name, pools_of(args))
    print_plan(planned.plan, args.output)
    if args.out:
        savedplan.write_saved_plan(args.out, planned.plan, planned.desired, planned.observed)
        say(f"Saved this plan to {args.out}; `cnm apply {args.out}` applies exactly it, "
            "and refuses if the kernel changes before.")
    if not args.observed:
        note_debris(planned.observed)
    if args.detailed_exitcode and not planned.plan.empty:
        return EXIT_CHANGES
    return EXIT_OK


def _confirmer(args: argparse.Namespace) -> Callable[[engine.Planned], bool]:
    def confirm(planned: engine.Planned) -> bool:
        print_plan(planned.plan, args.output)
        if args.dry_run:
            return False
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise CnmError("refusing to apply without --yes: stdin is not a terminal")
        answer = input("Apply these changes? Only 'yes' is accepted: ")
        return answer.strip() == "yes"

    return confirm


def cmd_apply(args: argparse.Namespace) -> int:
    if args.planfile is not None:
        if args.paths:
            raise CnmError("give either -f PATH or a saved plan file, not both")
        return cmd_apply_saved(args)
    from reconciler import engine
    from reconciler.caching import PlanCaches

    if not args.paths:
        raise CnmError("nothing to apply: give -f PATH (manifests) or a saved plan file")
    manifests = load(args.paths)
    caches = PlanCaches()  # the verification plans again: unchanged objects are reused

    def planner(observed: State) -> engine.Planned:
        engine.check_not_empty(manifests, observed, args.allow_empty)
        return engine.compute_plan(manifests, observed, pools_of(args), caches)

    if args.dry_run:
        planned = planner(engine.observe_set(args.set_name))
        print_plan(planned.plan, args.output)
        return EXIT_OK
    args.dry_run = False
    if args.confirm_seconds is not None and args.no_rollback:
        raise CnmError("--confirm rolls back when not confirmed; it cannot go with --no-rollback")
    result = _apply_with_progress(
        planner, args.set_name, args.output, lock_timeout=args.lock_timeout,
        confirm=_confirmer(args), rollback=not args.no_rollback,
        confirm_seconds=args.confirm_seconds,
    )
    return _report(result, args.output)


def _apply_with_progress(
    planner: Callable[[State], engine.Planned],
    set_name: str,
    output: str,
    *,
    lock_timeout: float,
    confirm: Callable[[engine.Planned], bool],
    **options: Any,
) -> engine.ApplyResult | engine.Planned:
    """engine.apply_planned with step progress on stderr: a bar on a terminal for long plans."""
    from reconciler import engine
    from reconciler.progress import ProgressReporter

    reporter = ProgressReporter() if output == "text" else None
    try:
        return engine.apply_planned(
            planner, set_name, lock_timeout=lock_timeout, confirm=confirm,
            progress=reporter, notify=say, **options,
        )
    finally:
        if reporter is not None:
            reporter.close()


def cmd_apply_saved(args: argparse.Namespace) -> int:
    """`cnm apply PLANFILE`: exactly the saved plan, refused if the kernel changed since."""
    from reconciler import engine, savedplan

    saved = savedplan.read_saved_plan(args.planfile)
    if args.set_name not in ("default", saved.set_name):
        raise CnmError(f"{args.planfile} is for apply set '{saved.set_name}', not "
                       f"'{args.set_name}'")

    def planner(observed: State) -> engine.Planned:
        return engine.Planned(savedplan.replay(saved, observed, args.planfile), saved.desired,
                              observed)

    def show(planned: engine.Planned) -> bool:
        print_plan(planned.plan, args.output)
        return not args.dry_run  # the saved plan was the review: no question asked

    if args.dry_run:
        planned = planner(engine.observe_set(saved.set_name))
        print_plan(planned.plan, args.output)
        return EXIT_OK
    result = _apply_with_progress(
        planner, saved.set_name, args.output, lock_timeout=args.lock_timeout, confirm=show,
        rollback=not args.no_rollback,
    )
    return _report(result, args.output)


def cmd_confirm(args: argparse.Namespace) -> int:
    from reconciler import confirm

    print(confirm.confirm_pending())
    return EXIT_OK


def _report(result: engine.ApplyResult | engine.Planned, output: str) -> int:
    from reconciler import engine

    if isinstance(result, engine.Planned):
        say("Apply cancelled.")
        return EXIT_ERROR
    plan = result.planned.plan
    if plan.empty:
        print_plan(plan, output)
        return EXIT_OK
    done: tuple[tuple[Verb, str], ...] = (
        ("create", "created"), ("update", "updated"), ("delete", "deleted"),
        ("replace", "replaced"),
    )
    summary = ", ".join(f"{plan.count(verb)} {word}" for verb, word in done)
    say(f"Apply complete: {summary} in {result.seconds:.2f} s. Verified: plan is now empty.")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from reconciler import engine

    manifests = load(args.paths)
    args.output, args.dry_run = "text", False
    result = _apply_with_progress(
        lambda observed: engine.deletion_plan(manifests, observed), args.set_name, "text",
        lock_timeout=args.lock_timeout, confirm=_confirmer(args), rollback=not args.no_rollback,
    )
    return _report(result, "text")

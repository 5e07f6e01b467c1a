"""`cnm plan`, `cnm apply`, `cnm delete`, `cnm confirm`: the commands that plan and change."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.cli.options import (
    add_common,
    add_files,
    add_pools,
    add_safety,
    pools_of,
    seconds,
)
from reconciler.cli.output import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    load_for_set,
    note_debris,
    observed_from_file,
    print_plan,
    require_privileges,
    say,
)
from reconciler.cli.parser import Commands
from reconciler.errors import CnmError

if TYPE_CHECKING:
    from reconciler import engine
    from reconciler.manifest_set import Manifests
    from reconciler.plan import Plan, Verb
    from reconciler.state import State


def register(commands: Commands) -> None:
    plan = commands.add(
        "plan", cmd_plan, summary="show what apply would change",
        description="Show what `cnm apply` would change to make the kernel match the "
                    "manifests: + create, ~ update in place, - delete, -/+ replace (with the "
                    "field that forces it). Changes nothing. Without --observed it reads the "
                    "kernel (root); with it, a snapshot from `cnm observe` (no root).",
        example="cnm plan -f manifests/\n"
                "cnm plan -f manifests/ -out plan.json       # review, then: cnm apply plan.json\n"
                "cnm plan -f manifests/ --detailed-exitcode  # exit 2 when there are changes",
    )
    add_files(plan)
    add_common(plan)
    add_plan_flags(plan, only_with_dry_run=False)

    apply = commands.add(
        "apply", cmd_apply, summary="make the kernel match the manifests",
        description="Plan, show the plan, ask, then change the kernel to match the manifests "
                    "and verify it does; on any failure restore the state from before the run. "
                    "Objects of the apply set that the manifests no longer hold are deleted. "
                    "With a PLANFILE from `cnm plan -out`, apply exactly that plan (refused if "
                    "the kernel changed since). --dry-run is `cnm plan` and takes its flags.",
        example="cnm apply -f manifests/\n"
                "cnm apply -f manifests/ --yes --confirm 60   # then `cnm confirm`, or roll back\n"
                "cnm apply plan.json",
    )
    apply.add_argument("planfile", nargs="?", metavar="PLANFILE",
                       help="a plan saved by `cnm plan -out`: apply exactly it (instead of -f)")
    add_files(apply, required=False)
    add_common(apply)
    apply.add_argument("--dry-run", action="store_true",
                       help="only show the plan, exactly as `cnm plan` (which flags it takes)")
    add_plan_flags(apply, only_with_dry_run=True)
    apply.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--allow-empty", action="store_true",
                       help="allow manifests with no object to prune the whole set")
    apply.add_argument("--lock-timeout", type=seconds, default=60.0, metavar="SECONDS",
                       help="wait this long for another cnm writer (default 60)")
    add_safety(apply, with_confirm=True)

    delete = commands.add(
        "delete", cmd_delete, summary="remove the objects these manifests describe",
        description="Delete the objects the manifests name (and the endpoints on a network or "
                    "in a sandbox that goes), and nothing else; shows the plan and asks first.",
        example="cnm delete -f manifests/web.yaml\ncnm delete -f manifests/ --yes",
    )
    add_files(delete)
    add_common(delete)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.add_argument("--lock-timeout", type=seconds, default=60.0, metavar="SECONDS",
                        help="wait this long for another cnm writer (default 60)")
    add_safety(delete, with_confirm=False)

    commands.add(
        "confirm", cmd_confirm, summary="keep the changes of a pending `apply --confirm`",
        description="Keep the changes of the `cnm apply --confirm SECONDS` that is waiting; "
                    "without it in time, that apply rolls back (like `netplan try`).",
        example="cnm apply -f manifests/ --yes --confirm 120 &\ncnm confirm",
    )


def add_plan_flags(parser: argparse.ArgumentParser, *, only_with_dry_run: bool) -> None:
    """The flags of `cnm plan`, which `cnm apply --dry-run` takes too."""
    when = "with --dry-run: " if only_with_dry_run else ""
    parser.add_argument("-o", "--output", choices=["text", "json", "markdown"], default="text",
                        help="how to show the plan (default text)"
                             + ("; markdown only with --dry-run" if only_with_dry_run else ""))
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help=f"{when}exit 2 when the plan has changes or problem lines "
                             "(0: none, 1: error)")
    parser.add_argument("--observed", metavar="FILE",
                        help=f"{when}plan against a snapshot from `cnm observe -o json` "
                             "(no root needed)")
    add_pools(parser)
    parser.add_argument("-out", "--out", dest="out", metavar="PLANFILE",
                        help=f"{when}also save the plan; `cnm apply PLANFILE` applies exactly it")


def cmd_plan(args: argparse.Namespace) -> int:
    return _plan(args, load_for_set(args))


def _plan(args: argparse.Namespace, manifests: Manifests) -> int:
    """`cnm plan`, and `cnm apply --dry-run` (which also refuses to empty a set unasked)."""
    from reconciler import engine, savedplan

    if args.observed:
        observed = observed_from_file(args.observed, args.set_name)
    else:
        require_privileges(args)
        observed = engine.observe_set(args.set_name)
    if args.command == "apply":
        engine.check_not_empty(manifests, observed, args.allow_empty)
    planned = engine.compute_plan(manifests, observed, pools_of(args))
    print_plan(planned.plan, args.output, snapshot=args.observed)
    if args.out:
        savedplan.write_saved_plan(args.out, planned.plan, planned.desired, planned.observed)
        say(f"Saved this plan to {args.out}; `cnm apply {args.out}` applies exactly it, "
            "and refuses if the kernel changes before.")
    if not args.observed:
        note_debris(planned.observed)
    return _plan_exit(args, planned.plan)


def _plan_exit(args: argparse.Namespace, plan: Plan) -> int:
    return EXIT_CHANGES if args.detailed_exitcode and (not plan.empty or plan.problems) \
        else EXIT_OK


def _confirmer(args: argparse.Namespace, verb: str) -> Callable[[engine.Planned], bool]:
    def confirm(planned: engine.Planned) -> bool:
        print_plan(planned.plan, args.output)
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise CnmError(f"refusing to {verb} without --yes: stdin is not a terminal")
        what = "changes" if verb == "apply" else "deletions"
        answer = input(f"{verb.capitalize()} these {what}? Only 'yes' is accepted: ")
        return answer.strip() == "yes"

    return confirm


def _only_with_dry_run(args: argparse.Namespace) -> None:
    given = [flag for flag, on in (
        ("--detailed-exitcode", args.detailed_exitcode), ("--observed", args.observed),
        ("-out", args.out), ("-o markdown", args.output == "markdown"),
    ) if on]
    if given and not args.dry_run:
        raise CnmError(f"{given[0]} goes only with --dry-run (it is a flag of `cnm plan`)")


def cmd_apply(args: argparse.Namespace) -> int:
    _only_with_dry_run(args)
    if args.planfile is not None:
        if args.paths:
            raise CnmError("give either -f PATH or a saved plan file, not both")
        return cmd_apply_saved(args)
    from reconciler import engine
    from reconciler.caching import PlanCaches

    if not args.paths:
        raise CnmError("nothing to apply: give -f PATH (manifests) or a saved plan file")
    manifests = load_for_set(args)
    if args.dry_run:
        return _plan(args, manifests)
    if args.confirm_seconds is not None and args.no_rollback:
        raise CnmError("--confirm rolls back when not confirmed; it cannot go with --no-rollback")
    require_privileges(args)
    caches = PlanCaches()  # the verification plans again: unchanged objects are reused

    def planner(observed: State) -> engine.Planned:
        engine.check_not_empty(manifests, observed, args.allow_empty)
        return engine.compute_plan(manifests, observed, pools_of(args), caches)

    result = _apply_with_progress(
        planner, args.set_name, args.output, lock_timeout=args.lock_timeout,
        confirm=_confirmer(args, "apply"), rollback=not args.no_rollback,
        confirm_seconds=args.confirm_seconds,
    )
    return report_result(result, args.output, "Apply")


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

    if args.observed or args.out:
        raise CnmError("a saved plan is applied to the kernel as it is: --observed and -out "
                       "go with -f PATH")
    saved = savedplan.read_saved_plan(args.planfile)
    if args.set_name not in ("default", saved.set_name):
        raise CnmError(f"{args.planfile} is for apply set '{saved.set_name}', not "
                       f"'{args.set_name}'")
    require_privileges(args)

    def planner(observed: State) -> engine.Planned:
        return engine.Planned(savedplan.replay(saved, observed, args.planfile), saved.desired,
                              observed)

    def show(planned: engine.Planned) -> bool:
        print_plan(planned.plan, args.output)
        return True  # the saved plan was the review: no question asked

    try:
        if args.dry_run:
            planned = planner(engine.observe_set(saved.set_name))
            print_plan(planned.plan, args.output)
            return _plan_exit(args, planned.plan)
        result = _apply_with_progress(
            planner, saved.set_name, args.output, lock_timeout=args.lock_timeout,
            confirm=show, rollback=not args.no_rollback,
        )
    except savedplan.AlreadyAppliedError as exc:  # applying twice is not an error
        say(f"cnm: {exc}")
        return EXIT_OK
    return report_result(result, args.output, "Apply")


def cmd_confirm(args: argparse.Namespace) -> int:
    from reconciler import confirm

    print(confirm.confirm_pending())
    return EXIT_OK


def report_result(result: engine.ApplyResult | engine.Planned, output: str, what: str) -> int:
    """The one line that ends an apply or a delete (`what`: "Apply" or "Delete")."""
    from reconciler import engine

    if isinstance(result, engine.Planned):
        say(f"{what} cancelled.")
        return EXIT_ERROR
    plan = result.planned.plan
    if plan.empty:
        print_plan(plan, output)
        return EXIT_OK
    done: tuple[tuple[Verb, str], ...] = (
        ("create", "created"), ("update", "updated"), ("delete", "deleted"),
        ("replace", "replaced"),
    )
    counts = [(plan.count(verb), word) for verb, word in done]
    if what == "Delete":  # a deletion plan only deletes: say nothing of the rest
        counts = [(n, word) for n, word in counts if n or word == "deleted"]
    summary = ", ".join(f"{n} {word}" for n, word in counts)
    say(f"{what} complete: {summary} in {result.seconds:.2f} s. Verified: plan is now empty.")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from reconciler import engine

    manifests = load_for_set(args)
    require_privileges(args)
    args.output = "text"
    result = _apply_with_progress(
        lambda observed: engine.deletion_plan(manifests, observed), args.set_name, "text",
        lock_timeout=args.lock_timeout, confirm=_confirmer(args, "delete"),
        rollback=not args.no_rollback, operation="delete",
    )
    return report_result(result, "text", "Delete")

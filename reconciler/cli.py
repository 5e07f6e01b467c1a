"""The `cnm` command: argument parsing, output and exit codes, nothing else.

Exit codes: 0 success (plan: no changes), 1 any error, 2 `plan
--detailed-exitcode` found changes. Every error is one line on stderr.

Each command imports the machinery it needs when it runs, not when this
module loads: building the parser must not import pydantic, yaml, the engine
or the kernel layer, so that `cnm --version` costs about one interpreter
start and `cnm validate` never loads the kernel layer (docs/performance.md,
"Start-up"; bench/bench_startup.py measures it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from reconciler import __version__
from reconciler.errors import CnmError, ManifestError
from reconciler.fleet import cli as fleet_cli
from reconciler.fleet import cluster_cli

if TYPE_CHECKING:
    from reconciler import engine
    from reconciler.model import Manifests
    from reconciler.plan import Plan, Verb
    from reconciler.pools import AddressPool
    from reconciler.state import State

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
KIND_WORDS = {"networks": "Network", "sandboxes": "Sandbox", "endpoints": "Endpoint"}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="set_name", default="default", metavar="NAME",
                        help="apply set these manifests manage (default: default)")


def _add_pools(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default-address-pool", dest="pools", action="append", type=_pool, metavar="POOL",
        help="pool for bridge networks without ipam, e.g. base=10.10.0.0/16,size=24 "
             "(repeatable; default: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s)",
    )


def _pool(text: str) -> AddressPool:
    from reconciler.pools import AddressPool

    try:
        return AddressPool.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _pools_of(args: argparse.Namespace) -> tuple[AddressPool, ...]:
    from reconciler.pools import DEFAULT_POOLS

    return tuple(args.pools) if args.pools else DEFAULT_POOLS


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0")
    return value


def _add_safety(parser: argparse.ArgumentParser, *, with_confirm: bool) -> None:
    parser.add_argument("--no-rollback", action="store_true",
                        help="on failure keep the partial state (for debugging) instead of "
                             "restoring the state from before this run")
    if with_confirm:
        parser.add_argument("--confirm", dest="confirm_seconds", type=_seconds, default=None,
                            metavar="SECONDS",
                            help="roll back unless `cnm confirm` arrives within SECONDS "
                                 "(like netplan try)")


def _add_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", dest="paths", action="append", required=True,
                        metavar="PATH", help="manifest file, directory (recursive) or - for stdin")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnm", description="Declarative container networks.")
    parser.add_argument("--version", action="version", version=f"cnm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = sub.add_parser("validate", help="check manifests (no privileges needed)")
    _add_files(validate)

    plan = sub.add_parser("plan", help="show what apply would change")
    _add_files(plan)
    _add_common(plan)
    plan.add_argument("-o", "--output", choices=["text", "json", "markdown"], default="text")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 2 when the plan has changes")
    plan.add_argument("--observed", metavar="FILE",
                      help="plan against a snapshot from `cnm observe -o json` (no root needed)")
    _add_pools(plan)
    plan.add_argument("-out", "--out", dest="out", metavar="PLANFILE",
                      help="also save the plan; `cnm apply PLANFILE` applies exactly it")

    apply = sub.add_parser("apply", help="make the kernel match the manifests")
    apply.add_argument("planfile", nargs="?", metavar="PLANFILE",
                       help="a plan saved by `cnm plan -out`: apply exactly it (instead of -f)")
    apply.add_argument("-f", "--filename", dest="paths", action="append", metavar="PATH",
                       help="manifest file, directory (recursive) or - for stdin")
    _add_common(apply)
    apply.add_argument("-o", "--output", choices=["text", "json"], default="text")
    apply.add_argument("--dry-run", action="store_true", help="only show the plan")
    apply.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--allow-empty", action="store_true",
                       help="allow manifests with no object to prune the whole set")
    apply.add_argument("--lock-timeout", type=_seconds, default=60.0, metavar="SECONDS",
                       help="wait this long for another cnm writer (default 60)")
    _add_pools(apply)
    _add_safety(apply, with_confirm=True)

    delete = sub.add_parser("delete", help="remove the objects these manifests describe")
    _add_files(delete)
    _add_common(delete)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.add_argument("--lock-timeout", type=_seconds, default=60.0, metavar="SECONDS",
                        help="wait this long for another cnm writer (default 60)")
    _add_safety(delete, with_confirm=False)

    sub.add_parser("confirm", help="keep the changes of a pending `apply --confirm`")

    get = sub.add_parser("get", help="list the owned objects the kernel shows")
    get.add_argument("kind", nargs="?", choices=sorted(KIND_WORDS), default=None)
    get.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text")
    _add_common(get)

    observe = sub.add_parser("observe", help="dump the observed state of a set (for --observed)")
    observe.add_argument("-o", "--output", choices=["json"], default="json")
    _add_common(observe)

    export = sub.add_parser("export", help="the owned objects as manifests (round-trips)")
    _add_common(export)
    export.add_argument("--mac", action="store_true",
                        help="also pin each endpoint's current MAC address")
    export.add_argument("--observed", metavar="FILE",
                        help="export from a snapshot of `cnm observe -o json` (no root needed)")

    sub.add_parser("schema", help="print the JSON Schema of the manifests")

    watch = sub.add_parser("watch", help="reconcile on every manifest change and kernel drift")
    _add_files(watch)
    _add_common(watch)
    watch.add_argument("--resync", type=float, default=30.0, metavar="SECONDS",
                       help="full re-read and reconcile this often (default 30)")
    watch.add_argument("--debounce", type=float, default=0.1, metavar="SECONDS",
                       help="quiet time that ends a burst of changes (default 0.1)")
    watch.add_argument("--allow-empty", action="store_true",
                       help="allow manifests with no object to prune the whole set")
    watch.add_argument("--lock-timeout", type=float, default=1.0, metavar="SECONDS",
                       help="wait this long for the apply lock, then retry later (default 1)")
    watch.add_argument("-v", "--verbose", action="store_true",
                       help="also log kernel events that needed no change")
    for fleet_command in (plan, apply, delete, watch):
        fleet_cli.add_arguments(fleet_command)
    cluster_cli.register(sub)
    return parser


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _load(paths: Sequence[str]) -> Manifests:
    """Load and validate (the loader alone: `cnm validate` needs nothing more)."""
    from reconciler.loader import load

    return load(paths, stdin=sys.stdin)


def cmd_validate(args: argparse.Namespace) -> int:
    manifests = _load(args.paths)
    count = len(manifests.networks) + len(manifests.sandboxes) + len(manifests.endpoints)
    print(f"Valid: {count} objects ({len(manifests.networks)} networks, "
          f"{len(manifests.sandboxes)} sandboxes, {len(manifests.endpoints)} endpoints).")
    return EXIT_OK


def _observed_from_file(path: str, set_name: str) -> State:
    from reconciler.state import State

    try:
        data = json.loads(Path(path).read_text())
        state = State.from_json(data)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CnmError(f"{path}: not an observed-state snapshot ({exc})") from exc
    if state.set_name != set_name:
        raise CnmError(f"{path}: snapshot is of apply set '{state.set_name}', not '{set_name}'")
    return state


def _print_plan(plan: Plan, output: str) -> None:
    from reconciler.render import render_json, render_markdown, render_text

    renderers = {"json": render_json, "markdown": render_markdown}
    sys.stdout.write(renderers.get(output, render_text)(plan))
    sys.stdout.flush()


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler import engine, savedplan

    manifests = _load(args.paths)
    if args.observed:
        observed = _observed_from_file(args.observed, args.set_name)
        planned = engine.compute_plan(manifests, observed, _pools_of(args))
    else:
        planned = engine.plan_manifests(manifests, args.set_name, _pools_of(args))
    _print_plan(planned.plan, args.output)
    if args.out:
        savedplan.write_saved_plan(args.out, planned.plan, planned.desired, planned.observed)
        _say(f"Saved this plan to {args.out}; `cnm apply {args.out}` applies exactly it, "
             "and refuses if the kernel changes before.")
    if not args.observed:
        _note_debris(planned.observed)
    if args.detailed_exitcode and not planned.plan.empty:
        return EXIT_CHANGES
    return EXIT_OK


def _confirmer(args: argparse.Namespace) -> Callable[[engine.Planned], bool]:
    def confirm(planned: engine.Planned) -> bool:
        _print_plan(planned.plan, args.output)
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
    manifests = _load(args.paths)
    caches = PlanCaches()  # the verification plans again: unchanged objects are reused

    def planner(observed: State) -> engine.Planned:
        engine.check_not_empty(manifests, observed, args.allow_empty)
        return engine.compute_plan(manifests, observed, _pools_of(args), caches)

    if args.dry_run:
        planned = planner(engine.observe_set(args.set_name))
        _print_plan(planned.plan, args.output)
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
            progress=reporter, notify=_say, **options,
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
        _print_plan(planned.plan, args.output)
        return not args.dry_run  # the saved plan was the review: no question asked

    if args.dry_run:
        planned = planner(engine.observe_set(saved.set_name))
        _print_plan(planned.plan, args.output)
        return EXIT_OK
    result = _apply_with_progress(
        planner, saved.set_name, args.output, lock_timeout=args.lock_timeout, confirm=show,
        rollback=not args.no_rollback,
    )
    return _report(result, args.output)


def _note_debris(observed: State) -> None:
    from reconciler import engine

    debris = engine.pending_debris(observed)
    if debris:
        _say(engine.debris_note(debris))


def cmd_confirm(args: argparse.Namespace) -> int:
    from reconciler import confirm

    print(confirm.confirm_pending())
    return EXIT_OK


def _report(result: engine.ApplyResult | engine.Planned, output: str) -> int:
    from reconciler import engine

    if isinstance(result, engine.Planned):
        _say("Apply cancelled.")
        return EXIT_ERROR
    plan = result.planned.plan
    if plan.empty:
        _print_plan(plan, output)
        return EXIT_OK
    done: tuple[tuple[Verb, str], ...] = (
        ("create", "created"), ("update", "updated"), ("delete", "deleted"),
        ("replace", "replaced"),
    )
    summary = ", ".join(f"{plan.count(verb)} {word}" for verb, word in done)
    _say(f"Apply complete: {summary} in {result.seconds:.2f} s. Verified: plan is now empty.")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from reconciler import engine

    manifests = _load(args.paths)
    args.output, args.dry_run = "text", False
    result = _apply_with_progress(
        lambda observed: engine.deletion_plan(manifests, observed), args.set_name, "text",
        lock_timeout=args.lock_timeout, confirm=_confirmer(args), rollback=not args.no_rollback,
    )
    return _report(result, "text")


def cmd_get(args: argparse.Namespace) -> int:
    from reconciler import engine
    from reconciler.render import describe
    from reconciler.yaml_documents import dump_yaml

    state = engine.observe_set(args.set_name)
    kind = KIND_WORDS.get(args.kind) if args.kind else None
    order = {k: i for i, k in enumerate(KIND_WORDS.values())}
    resources = sorted(
        (r for r in state if kind is None or r.key.kind == kind),
        key=lambda r: (order[r.key.kind], r.key.name),
    )
    if args.output == "json":
        print(json.dumps([r.to_json() for r in resources], indent=2))
    elif args.output == "yaml":
        sys.stdout.write(dump_yaml([r.to_json() for r in resources]))
    else:
        rows = [(str(r.key), describe(r)) for r in resources]
        width = max([len(k) for k, _ in rows] + [len("OBJECT")]) + 2
        print("OBJECT".ljust(width) + "KERNEL")
        for key, text in rows:
            print(key.ljust(width) + text)
    return EXIT_OK


def cmd_observe(args: argparse.Namespace) -> int:
    from reconciler import engine

    print(json.dumps(engine.observe_set(args.set_name).to_json(), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from reconciler import engine
    from reconciler.export import export_state

    if args.observed:
        state = _observed_from_file(args.observed, args.set_name)
    else:
        state = engine.observe_set(args.set_name)
    result = export_state(state, with_mac=args.mac)
    sys.stdout.write(result.yaml(args.set_name))
    sys.stdout.flush()
    for warning in result.warnings:
        _say(f"cnm export: warning: {warning}")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from reconciler.watch import WatchOptions, watch

    options = WatchOptions(
        paths=tuple(args.paths), set_name=args.set_name, resync=args.resync,
        debounce=args.debounce, allow_empty=args.allow_empty, lock_timeout=args.lock_timeout,
        verbose=args.verbose,
    )
    return watch(options, _say)


def cmd_schema(args: argparse.Namespace) -> int:
    from reconciler.manifest_schema import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK


COMMANDS = {
    "validate": cmd_validate, "plan": cmd_plan, "apply": cmd_apply, "delete": cmd_delete,
    "get": cmd_get, "observe": cmd_observe, "schema": cmd_schema, "export": cmd_export,
    "watch": cmd_watch, "confirm": cmd_confirm, "cluster": cluster_cli.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return fleet_cli.route(args, COMMANDS[args.command])(args)
    except ManifestError as exc:
        _say(str(exc))
        return EXIT_ERROR
    except CnmError as exc:
        _say(f"cnm: {exc.one_line()}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _say("cnm: interrupted")
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
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nobody to tell
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()

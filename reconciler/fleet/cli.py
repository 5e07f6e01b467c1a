"""The fleet's command-line options on plan/apply/delete/watch, and those commands with a store.

`add_arguments` adds `--host`, `--store`, `--advertise-address` and the store's
TLS files (each defaulting to its `CNM_*` variable); `route` sends a command
to its fleet version when a store or a host is given, else to the plain one
(which plans for this machine's hostname and refuses overlay networks, naming
`--store`: engine.single_host_share). Imports only argparse and os at load:
the rest when a command runs (tests/unit/test_startup.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.fleet.planner import FleetPlan, HostFacts
    from reconciler.fleet.records import StoreConfig

Handler = Callable[[argparse.Namespace], int]
FLEET_COMMANDS = ("plan", "apply", "delete", "watch")
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2  # as reconciler/cli.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--host`, `--advertise-address` and the store's options (store_options.py)."""
    from reconciler.fleet.store_options import add_store_options

    parser.add_argument("--host", default=None, metavar="NAME",
                        help="this host's name in the fleet (env CNM_HOST; default: hostname)")
    parser.add_argument("--advertise-address", default=None, metavar="IP",
                        help="this host's VTEP address (env CNM_ADVERTISE_ADDRESS; default: the "
                             "source address of the route to the first store endpoint)")
    add_store_options(parser)


def _from_environment(args: argparse.Namespace) -> None:
    """Options not given take their `CNM_*` variable (read when the command runs)."""
    args.host = args.host or os.environ.get("CNM_HOST") or None
    args.advertise_address = args.advertise_address or \
        os.environ.get("CNM_ADVERTISE_ADDRESS") or None
    args.store = getattr(args, "store", None) or os.environ.get("CNM_STORE") or None


def register(commands: Any) -> None:
    """The fleet's part of the parser (one line in cli/parser.py's COMMAND_GROUPS, after
    the groups that register plan, apply, delete and watch): their fleet options and the
    routing of their handlers."""
    for name in FLEET_COMMANDS:
        parser = commands.built(name)
        if parser is None:  # not invoked: not built (cli/parser.py)
            continue
        add_arguments(parser)
        parser.set_defaults(handler=_routed(parser.get_default("handler")))


def _routed(handler: Handler) -> Handler:
    return lambda args: route(args, handler)(args)


def route(args: argparse.Namespace, handler: Handler) -> Handler:
    """The fleet version of a command when a store or a host is named, else `handler`."""
    if getattr(args, "command", None) not in FLEET_COMMANDS:
        return handler
    _from_environment(args)
    if not (args.store or args.host):
        return handler
    if args.command == "apply" and getattr(args, "planfile", None) is not None:
        return handler
    command = {"plan": cmd_plan, "apply": cmd_apply, "delete": cmd_delete,
               "watch": cmd_watch}[args.command]
    return command


def store_config(args: argparse.Namespace) -> StoreConfig | None:
    from reconciler.fleet.store_options import store_config as configured

    return configured(args)


def host_facts(args: argparse.Namespace, config: StoreConfig | None) -> HostFacts:
    """This host's name, advertise address and underlay MTU, as given or as the kernel says."""
    import ipaddress
    import socket

    from reconciler.errors import CnmError
    from reconciler.fleet.planner import HostFacts
    from reconciler.kernel.underlay import mtu_of_address, source_address

    advertise = args.advertise_address
    if advertise is not None:
        try:
            advertise = str(ipaddress.ip_address(advertise))
        except ValueError:
            raise CnmError(f"--advertise-address {advertise}: not an IP address") from None
    elif config is not None:
        advertise = source_address(config.endpoints[0])
    underlay = mtu_of_address(advertise) if advertise is not None else None
    return HostFacts(args.host or socket.gethostname(), args.set_name, advertise, underlay)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _facts_text(plan: FleetPlan, url: str) -> str:
    lines = plan.facts
    if not lines:
        return f"Cluster store {url}: nothing to claim.\n"
    return f"Cluster store {url}: would\n" + "".join(f"  {line}\n" for line in lines)


def _open(config: StoreConfig, *, read_only: bool = False):  # type: ignore[no-untyped-def]
    from reconciler.fleet.store import ClusterStore

    return ClusterStore.open(config, read_only=read_only)


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler import engine
    from reconciler.errors import CnmError
    from reconciler.fleet import console
    from reconciler.fleet.placement import refuse_overlay_without_store
    from reconciler.fleet.planner import plan_host
    from reconciler.fleet.records import ClusterView

    if args.observed or args.out:
        raise CnmError("--observed and --out do not go with a fleet plan (--store/--host)")
    manifests = console.load(args.paths)
    config = store_config(args)
    facts = host_facts(args, config)
    if config is None:
        refuse_overlay_without_store(manifests, facts.host)
        view = ClusterView(revision=0)
    else:
        with _open(config, read_only=True) as store:
            view = store.read()
    plan = plan_host(manifests, engine.observe_set(args.set_name), view, facts,
                     console.pools(args))
    console.print_plan(plan.planned.plan, args.output)
    if config is not None and args.output == "text":
        sys.stdout.write(_facts_text(plan, config.url))
    if args.detailed_exitcode and (not plan.planned.plan.empty or plan.claims or plan.vnis):
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    import contextlib
    import random
    import time

    from reconciler import engine
    from reconciler.caching import PlanCaches
    from reconciler.errors import CnmError
    from reconciler.fleet import console
    from reconciler.fleet.session import ATTEMPTS, FleetPlanner, LostRace, settle

    if not args.paths:
        raise CnmError("nothing to apply: give -f PATH (manifests)")
    manifests = console.load(args.paths)
    config = store_config(args)
    facts = host_facts(args, config)
    with _open(config) if config is not None else contextlib.nullcontext() as store:
        for attempt in range(ATTEMPTS):
            planner = FleetPlanner(
                manifests, facts, store, console.pools(args), PlanCaches(),
                check=lambda m, o: engine.check_not_empty(m, o, args.allow_empty))
            if args.dry_run:
                planned = planner(engine.observe_set(args.set_name))
                console.print_plan(planned.plan, args.output)
                if planner.last is not None and config is not None and args.output == "text":
                    sys.stdout.write(_facts_text(planner.last, config.url))
                return EXIT_OK
            try:
                result = console.apply_with_progress(
                    planner, args.set_name, args.output, lock_timeout=args.lock_timeout,
                    confirm=planner.confirm_then_claim(console.confirmer(args)),
                    rollback=not args.no_rollback, confirm_seconds=args.confirm_seconds,
                )
                if isinstance(result, engine.ApplyResult) and planner.last is not None \
                        and store is not None:
                    planner.claim()  # a plan with no kernel change may still lack a claim
                    settle(store, planner.last.view, result.planned.desired, facts)
            except LostRace as exc:
                _say(f"cnm: {exc}; planning again (attempt {attempt + 2} of {ATTEMPTS})")
                time.sleep(random.uniform(0.0, 0.05 * (attempt + 1)))
                continue
            return int(console.report(result, args.output))
    raise LostRace(f"lost the race for cluster addresses {ATTEMPTS} times in a row; try again")


def cmd_delete(args: argparse.Namespace) -> int:
    from reconciler import engine
    from reconciler.fleet import console
    from reconciler.fleet.placement import host_share, refuse_overlay_without_store
    from reconciler.fleet.session import settle
    from reconciler.state import State

    manifests = console.load(args.paths)
    config = store_config(args)
    facts = host_facts(args, config)
    share = host_share(manifests, facts.host)
    if config is None:
        refuse_overlay_without_store(manifests, facts.host)
    args.output, args.dry_run = "text", False

    def planner(observed: State) -> engine.Planned:
        return engine.deletion_plan(share, observed, placed=True)

    if config is None:
        result = console.apply_with_progress(
            planner, args.set_name, "text", lock_timeout=args.lock_timeout,
            confirm=console.confirmer(args), rollback=not args.no_rollback)
        return int(console.report(result, "text", "Delete"))
    with _open(config) as store:
        store.read()  # the store must answer before anything changes
        result = console.apply_with_progress(
            planner, args.set_name, "text", lock_timeout=args.lock_timeout,
            confirm=console.confirmer(args), rollback=not args.no_rollback)
        if isinstance(result, engine.ApplyResult):
            settle(store, store.read(), result.planned.desired, facts)
    return int(console.report(result, "text", "Delete"))


def cmd_watch(args: argparse.Namespace) -> int:
    from reconciler.fleet.watch import FleetWatcher
    from reconciler.watch import WatchOptions, watch

    config = store_config(args)
    facts = host_facts(args, config)
    options = WatchOptions(
        paths=tuple(args.paths), set_name=args.set_name, resync=args.resync,
        debounce=args.debounce, allow_empty=args.allow_empty, lock_timeout=args.lock_timeout,
        verbose=args.verbose,
    )
    return watch(options, _say, lambda o, log: FleetWatcher(o, log, facts, config))

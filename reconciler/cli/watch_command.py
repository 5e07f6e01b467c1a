"""`cnm watch`: reconcile on every manifest change and kernel drift."""

from __future__ import annotations

import argparse

from reconciler.cli.options import add_common, add_files
from reconciler.cli.output import say
from reconciler.cli.parser import Commands


def register(commands: Commands) -> None:
    watch = commands.add(
        "watch", cmd_watch, summary="reconcile on every manifest change and kernel drift",
        description="Apply the manifests, then keep the kernel matching them: on every change "
                    "of the files and on every kernel change to an object cnm owns. A file that "
                    "does not parse or validate is reported and changes nothing (the last good "
                    "manifests stay in force). Ends on Ctrl-C.",
        example="cnm watch -f manifests/ --resync 60",
    )
    add_files(watch)
    add_common(watch)
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


def cmd_watch(args: argparse.Namespace) -> int:
    from reconciler.watch import WatchOptions, watch

    options = WatchOptions(
        paths=tuple(args.paths), set_name=args.set_name, resync=args.resync,
        debounce=args.debounce, allow_empty=args.allow_empty, lock_timeout=args.lock_timeout,
        verbose=args.verbose,
    )
    return watch(options, say)

"""Flags and argument types several commands share."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.pools import AddressPool


def add_common(parser: argparse.ArgumentParser) -> None:
    """The flags of every command that works on an apply set."""
    parser.add_argument("--set", dest="set_name", default="default", metavar="NAME",
                        help="apply set these manifests manage (default: default)")


def add_files(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("-f", "--filename", dest="paths", action="append", required=required,
                        metavar="PATH", help="manifest file, directory (recursive) or - for stdin")


def add_pools(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default-address-pool", dest="pools", action="append", type=pool, metavar="POOL",
        help="pool for bridge networks without ipam, e.g. base=10.10.0.0/16,size=24 "
             "(repeatable; default: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s)",
    )


def add_safety(parser: argparse.ArgumentParser, *, with_confirm: bool) -> None:
    parser.add_argument("--no-rollback", action="store_true",
                        help="on failure keep the partial state (for debugging) instead of "
                             "restoring the state from before this run")
    if with_confirm:
        parser.add_argument("--confirm", dest="confirm_seconds", type=seconds, default=None,
                            metavar="SECONDS",
                            help="roll back unless `cnm confirm` arrives within SECONDS "
                                 "(like netplan try)")


def pool(text: str) -> AddressPool:
    from reconciler.pools import AddressPool

    try:
        return AddressPool.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def pools_of(args: argparse.Namespace) -> tuple[AddressPool, ...]:
    from reconciler.pools import DEFAULT_POOLS

    return tuple(args.pools) if args.pools else DEFAULT_POOLS


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0")
    return value

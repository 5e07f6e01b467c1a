"""`cnm cluster status` and `cnm cluster forget HOST`: the store as the fleet sees it.

`register(commands)` adds the `cluster` command to cnm's parser (a command
group listed in `cli/parser.py`); `run(args)` runs it. Parsing loads
argparse only; the store (and urllib3) load when the command runs. `status`
only reads (a read-only store: it cannot write); `forget` refuses a host
whose lease is alive unless `--force`, because that host would claim its
addresses again on its next apply while others might already have taken them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ..errors import CnmError
from .store_options import add_store_options, store_config

if TYPE_CHECKING:
    from ..cli.parser import Commands
    from .records import ClusterView, StoreConfig


def register(commands: Commands) -> None:
    """Add `cluster status|forget` to cnm's parser (a command group of `cli/parser.py`)."""
    cluster = commands.add("cluster", run, summary="the fleet's hosts, networks and endpoints "
                                                   "as the cluster store holds them")
    verbs = cluster.add_subparsers(dest="cluster_command", required=True, metavar="VERB")
    status = verbs.add_parser("status", help="hosts, VTEPs, overlay networks, endpoints per "
                                             "host, expired leases")
    add_store_options(status)
    status.add_argument("-o", "--output", choices=("text", "json"), default="text")
    forget = verbs.add_parser("forget", help="release everything a lost host held "
                                             "(addresses, membership, endpoints)")
    forget.add_argument("host", metavar="HOST")
    forget.add_argument("--force", action="store_true",
                        help="also when the host's lease is alive (its watch still runs)")
    add_store_options(forget)


def _config(args: argparse.Namespace) -> StoreConfig:
    config = store_config(args)
    if config is None:
        raise CnmError("cnm cluster: --store (or CNM_STORE) names no store")
    return config


def run(args: argparse.Namespace) -> int:
    """`cnm cluster VERB`; exit 0, or a CnmError (one line, exit 1) for the CLI to print."""
    from .store import ClusterStore

    config = _config(args)
    if args.cluster_command == "status":
        with ClusterStore.open(config, read_only=True) as store:
            view = store.read()
        if args.output == "json":
            print(json.dumps(status_document(config, view), indent=2, sort_keys=True))
        else:
            sys.stdout.write(status_text(config, view))
        return 0
    from .keys import part

    host = part("host", args.host)
    with ClusterStore.open(config) as store:
        view = store.read()
        record = next((h for h in view.hosts if h.host == host), None)
        if record is None:
            print(f"cnm cluster forget: the store {config.url} knows no host {host}; "
                  "nothing to do")
            return 0
        if record.alive and not args.force:
            raise CnmError(f"cnm cluster forget: host {host} is alive (its lease is kept by "
                           "`cnm watch`); stop it first, or pass --force")
        removed = store.forget(host)
    print(f"cnm cluster forget: released {removed} keys of host {host} in {config.url}")
    return 0


def status_document(config: StoreConfig, view: ClusterView) -> dict[str, Any]:
    """The status as JSON-ready data (`-o json`)."""
    return {
        "store": config.url, "revision": view.revision,
        "hosts": [{"host": h.host, "vtep": h.vtep, "lease": h.lease,
                   "endpoints": [f"{e.set}/{e.endpoint}" for e in view.endpoints
                                 if e.host == h.host],
                   "addresses": len(view.held_by(h.host))} for h in view.hosts],
        "networks": [{"network": n, "vni": view.vnis.get(n),
                      "hosts": [m.host for m in view.members_of(n)]}
                     for n in sorted(set(view.vnis) | {m.network for m in view.members})],
        "endpoints": [{"network": e.network, "host": e.host, "set": e.set,
                       "endpoint": e.endpoint, "mac": e.mac, "ipv4": e.ipv4, "ipv6": e.ipv6}
                      for e in view.endpoints],
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                   .rstrip() + "\n" for row in rows)


def status_text(config: StoreConfig, view: ClusterView) -> str:
    """Hosts (VTEP, lease, endpoints, addresses), then networks, then endpoints."""
    doc = status_document(config, view)
    out = [f"store {config.url} at revision {view.revision}\n\n"]
    hosts = [["HOST", "VTEP", "LEASE", "ENDPOINTS", "ADDRESSES"]]
    hosts += [[h["host"], h["vtep"] or "-", h["lease"], str(len(h["endpoints"])),
               str(h["addresses"])] for h in doc["hosts"]]
    out.append(_table(hosts) if doc["hosts"] else "no hosts\n")
    networks = [["NETWORK", "VNI", "HOSTS"]]
    networks += [[n["network"], str(n["vni"] or "-"), ",".join(n["hosts"]) or "-"]
                 for n in doc["networks"]]
    out.append("\n" + (_table(networks) if doc["networks"] else "no overlay networks\n"))
    if view.endpoints:
        endpoints = [["HOST", "ENDPOINT", "NETWORK", "MAC", "IPV4", "IPV6"]]
        endpoints += [[e.host, f"{e.set}/{e.endpoint}", e.network, e.mac, e.ipv4 or "-",
                       e.ipv6 or "-"] for e in view.endpoints]
        out.append("\n" + _table(endpoints))
    return "".join(out)

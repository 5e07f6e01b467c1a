"""Each side's objects as iproute2 and nft show them (never through cnm's own code)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from helpers import _settled, ip_json, json_diff

#: nftables tables cnm owns; every other table belongs to the host's other networking.
CNM_TABLES = frozenset({("inet", "cnm"), ("bridge", "cnm")})
CNM_MARK = "cnm/v1"



def _cnm_owned(link: dict[str, Any]) -> bool:
    return str(link.get("ifalias", "")).startswith(CNM_MARK)


def _ns_view(netns: str | None) -> dict[str, Any]:
    def ipj(*args: str) -> Any:
        if netns is not None and netns.startswith("/"):
            out = subprocess.run(["nsenter", f"--net={netns}", "ip", "-j", *args],
                                 capture_output=True, text=True, check=True).stdout
            return json.loads(out or "[]")
        return ip_json(*args, netns=netns)
    return {"links": ipj("-d", "link", "show"), "addrs": ipj("addr", "show"),
            "routes": ipj("route", "show", "table", "all"),
            "routes6": ipj("-6", "route", "show", "table", "all"),
            "rules": ipj("rule", "show"), "rules6": ipj("-6", "rule", "show")}


def _strip_counters(value: Any) -> Any:
    """nft's packet and byte counters count traffic, not configuration: keep only that a
    counter is there."""
    if isinstance(value, dict):
        return {k: ("counter" if k == "counter" else _strip_counters(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_counters(v) for v in value]
    return value


def _cnm_rule(obj: dict[str, Any]) -> bool:
    return "rule" in obj and CNM_MARK in str(obj["rule"].get("comment", ""))


def nft_ruleset() -> list[dict[str, Any]]:
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True,
                         check=True).stdout
    return [o for o in json.loads(out)["nftables"] if "metainfo" not in o]


def files_under(*roots: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_symlink():
                files[str(path)] = f"-> {os.readlink(path)}"
            elif path.is_file():
                files[str(path)] = path.read_bytes().decode(errors="replace")
            else:
                files[str(path)] = "<dir>"
    return files


CNM_FILES = ("/etc/netns", "/run/cnm", "/var/lib/cnm")


def side(owner: str, peer_netns: dict[str, str] | None = None,
         peer_files: tuple[str, ...] = (), skip_links: tuple[str, ...] = ("lo", "up0")
         ) -> dict[str, Any]:
    """Everything of one side, "cnm" or "peer", as iproute2 and nft show it.

    Host links are cnm's when their alias carries cnm's marker; addresses and routes go
    with their link. Named namespaces are cnm's when their loopback carries the marker
    (a sandbox), the peer's otherwise (`outside` excepted); `peer_netns` adds the peer's
    unnamed ones (name -> /proc/PID/ns/net). nftables tables other than cnm's are the
    peer's, less any rule cnm marked in them. Rules (`ip rule`) are the host's: both
    sides carry them. Kernel-changed values (counters, timers, carrier) are dropped."""
    mine = owner == "cnm"
    host = _ns_view(None)
    names = {link["ifname"] for link in host["links"]
             if link["ifname"] not in skip_links and _cnm_owned(link) == mine}
    view: dict[str, Any] = {
        "links": [link for link in host["links"] if link["ifname"] in names],
        "addrs": [a for a in host["addrs"] if a["ifname"] in names],
        "routes": [r for key in ("routes", "routes6") for r in host[key]
                   if r.get("dev") in names],
        "rules": [host["rules"], host["rules6"]],
    }
    namespaces: dict[str, Any] = {}
    for entry in ip_json("netns", "list"):
        name = entry["name"]
        if name == "outside":
            continue
        ns = _ns_view(name)
        lo = next(link for link in ns["links"] if link["ifname"] == "lo")
        if _cnm_owned(lo) == mine:
            namespaces[name] = ns
    if not mine:
        for name, path in (peer_netns or {}).items():
            namespaces[name] = _ns_view(path)
    view["netns"] = namespaces
    tables: dict[str, list[Any]] = {}
    for obj in nft_ruleset():
        kind = next(iter(obj))
        family = obj[kind]["family"]
        table = obj[kind]["name" if kind == "table" else "table"]
        cnm_table = (family, table) in CNM_TABLES
        # in another system's table, only the rules cnm marked are cnm's
        if (cnm_table or _cnm_rule(obj)) == mine:
            tables.setdefault(f"{family} {table}", []).append(_strip_counters(obj))
    view["nft"] = tables
    view["files"] = files_under(*(CNM_FILES if mine else peer_files))
    settled: dict[str, Any] = _settled(view)
    return settled


def assert_unchanged(before: dict[str, Any], after: dict[str, Any], what: str) -> None:
    if before != after:
        raise AssertionError(f"{what} changed:\n{json_diff(before, after, context=2)}")

"""nft JSON expressions, built exactly in the form `nft -j list` prints them, and the
canonical text that makes a written rule comparable with the one the kernel lists."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any

Expr = list[dict[str, Any]]


def match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def ct(key: str) -> dict[str, Any]:
    return {"ct": {"key": key}}


def payload(protocol: str, field_name: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field_name}}


def prefix(subnet: str) -> dict[str, Any]:
    network = ipaddress.ip_network(subnet)
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


def ip_family(version: int) -> str:
    """nft's name of an IP version's family and header: `ip` or `ip6`."""
    return "ip" if version == 4 else "ip6"


def interfaces(names: Sequence[str]) -> Any:
    """One interface name, or an anonymous set of them (nft prints a 1-set as its element)."""
    ordered = sorted(set(names))
    return ordered[0] if len(ordered) == 1 else {"set": ordered}


LOCAL = match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
NOT_DNAT = match(ct("status"), "dnat", "!")
DNAT = match(ct("status"), "dnat", "in")
NOT_REPLY = match(ct("state"), {"set": ["established", "related"]}, "!=")
DROP: dict[str, Any] = {"drop": None}
MASQUERADE: dict[str, Any] = {"masquerade": None}
TO_PORTS: dict[str, Any] = {"jump": {"target": "ports"}}


def canonical(expr: Expr) -> str:
    """Comparable text of an expression list: keys sorted, no spaces, set elements sorted
    (the kernel may list an anonymous set in another order than it was written)."""
    text = json.dumps(expr, sort_keys=True, separators=(",", ":"))
    if '"set":' not in text:
        return text

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: sorted((norm(v) for v in value[k]), key=json.dumps)
                if k == "set" and isinstance(value[k], list) else norm(value[k])
                for k in value
            }
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value

    return json.dumps(norm(expr), sort_keys=True, separators=(",", ":"))

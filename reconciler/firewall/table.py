"""cnm's nftables tables: their names, their chains, their own rules, and `Rule`, one
rule as cnm writes it, with the comment that names its owner and item."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.firewall.expr import LOCAL, TO_PORTS, canonical, match, payload, prefix
from reconciler.state import Owner

TABLE = "cnm"
#: Comment of the table's own rules (the dispatch jumps). A table named `cnm`
#: counts as cnm's when it holds a rule with a cnm comment, or no rule at all.
TABLE_MARKER = "cnm/v1 table"
FAMILIES = ("inet", "bridge")

ChainSpec = tuple[str, str, int, str]  # type, hook, priority, policy

#: Every chain cnm keeps, per table family. None = a regular chain (jump target).
CHAINS: Mapping[str, Mapping[str, ChainSpec | None]] = {
    "inet": {
        "prerouting": ("nat", "prerouting", -100, "accept"),
        "output": ("nat", "output", -100, "accept"),
        "ports": None,
        "postrouting": ("nat", "postrouting", 100, "accept"),
        "forward": ("filter", "forward", 0, "accept"),
    },
    "bridge": {
        "forward": ("filter", "forward", -200, "accept"),
    },
}


@dataclass(frozen=True, order=True)
class Rule:
    """One rule as cnm writes it: where it goes, its owner comment, its expression."""

    family: str
    chain: str
    comment: str
    expr: str  # canonical JSON text of the expression list

    @classmethod
    def of(cls, family: str, chain: str, comment: str, *expr: dict[str, Any]) -> Rule:
        return cls(family, chain, comment, canonical(list(expr)))

    def add_command(self) -> dict[str, Any]:
        return {"add": {"rule": {
            "family": self.family, "table": TABLE, "chain": self.chain,
            "expr": json.loads(self.expr), "comment": self.comment,
        }}}


#: The table's own rules: published ports are looked up only for local destinations,
#: and never for loopback ones (a host service on 127.0.0.1 stays reachable).
TABLE_RULES: Mapping[str, tuple[Rule, ...]] = {
    "inet": (
        Rule.of("inet", "prerouting", TABLE_MARKER, LOCAL, TO_PORTS),
        Rule.of("inet", "output", TABLE_MARKER, LOCAL,
                match(payload("ip", "daddr"), prefix("127.0.0.0/8"), "!="), TO_PORTS),
        Rule.of("inet", "output", TABLE_MARKER, LOCAL,
                match(payload("ip6", "daddr"), "::1", "!="), TO_PORTS),
    ),
    "bridge": (),
}


def comment_of(owner: Owner, item: str) -> str:
    """The comment of a rule implementing `item` (`icc`, `port 8080->80/tcp`...) of `owner`."""
    return f"{owner.marker()} {item}"


def parse_comment(comment: str | None) -> tuple[Owner, str] | None:
    """(owner, item) of a cnm rule comment; None for the table's rules and foreign ones."""
    if not comment or not comment.startswith("cnm/v1 set="):
        return None
    parts = comment.split(" ", 3)
    if len(parts) < 4:
        return None
    owner = Owner.parse(" ".join(parts[:3]))
    return None if owner is None else (owner, parts[3])

"""What the kernel shows: cnm's tables as `nft -j list table` prints them, whether their
skeleton is intact, and whether a table named cnm is someone else's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.firewall.expr import canonical
from reconciler.firewall.table import (
    CHAINS,
    FAMILIES,
    TABLE,
    TABLE_MARKER,
    TABLE_RULES,
    ChainSpec,
    Rule,
)


@dataclass(frozen=True)
class ObservedRule:
    family: str
    chain: str
    handle: int
    comment: str | None
    expr: str

    @property
    def rule(self) -> Rule:
        return Rule(self.family, self.chain, self.comment or "", self.expr)

    def delete_command(self) -> dict[str, Any]:
        return {"delete": {"rule": {
            "family": self.family, "table": TABLE, "chain": self.chain, "handle": self.handle,
        }}}


@dataclass(frozen=True)
class Ruleset:
    """cnm's tables (`<family> cnm`) as `nft -j list table` shows them."""

    tables: frozenset[str] = frozenset()  # families that have a table named cnm
    chains: Mapping[tuple[str, str], ChainSpec | None] = field(default_factory=dict)
    rules: tuple[ObservedRule, ...] = ()

    @classmethod
    def from_nft(cls, objects: Iterable[Mapping[str, Any]]) -> Ruleset:
        """From the objects of `nft -j list table` outputs (metainfo and others ignored)."""
        tables: set[str] = set()
        chains: dict[tuple[str, str], ChainSpec | None] = {}
        rules: list[ObservedRule] = []
        for obj in objects:
            if "table" in obj and obj["table"].get("name") == TABLE:
                tables.add(str(obj["table"]["family"]))
            elif "chain" in obj and obj["chain"].get("table") == TABLE:
                chain = obj["chain"]
                spec: ChainSpec | None = None
                if "hook" in chain:
                    spec = (str(chain.get("type")), str(chain["hook"]), int(chain.get("prio", 0)),
                            str(chain.get("policy", "accept")))
                chains[(str(chain["family"]), str(chain["name"]))] = spec
            elif "rule" in obj and obj["rule"].get("table") == TABLE:
                rule = obj["rule"]
                comment = rule.get("comment")
                rules.append(ObservedRule(
                    str(rule["family"]), str(rule["chain"]), int(rule["handle"]),
                    str(comment) if comment is not None else None, canonical(rule["expr"]),
                ))
        return cls(frozenset(tables), chains, tuple(rules))

    def of_family(self, family: str) -> list[ObservedRule]:
        return [r for r in self.rules if r.family == family]

    def foreign(self, family: str) -> bool:
        """True when a table named cnm holds rules, none of them cnm's: someone else's table."""
        rules = self.of_family(family)
        return bool(rules) and not any(
            r.comment is not None and r.comment.startswith("cnm/v1 ") for r in rules
        )

    def infra_intact(self, family: str) -> bool:
        """The table exists with exactly cnm's chains and its own rules, each once."""
        if family not in self.tables:
            return False
        for name, spec in CHAINS[family].items():
            if (family, name) not in self.chains or self.chains[(family, name)] != spec:
                return False
        present = Counter(r.rule for r in self.of_family(family) if r.comment == TABLE_MARKER)
        return present == Counter(TABLE_RULES[family])


def occupied(ruleset: Ruleset) -> dict[str, str]:
    """Kernel names held by someone else: a table named cnm that is not cnm's."""
    return {
        f"nft:table {family} {TABLE}": f"nftables table {family} {TABLE} (not owned by cnm)"
        for family in FAMILIES
        if family in ruleset.tables and ruleset.foreign(family)
    }

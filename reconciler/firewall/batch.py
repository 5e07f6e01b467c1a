"""The transaction: one atomic nft batch that makes cnm's tables hold exactly the rules
of a desired state for its set, and the UDP conntrack flushes that follow it."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.errors import ConflictError
from reconciler.firewall.ports import PortMap
from reconciler.firewall.ruleset import ObservedRule, Ruleset
from reconciler.firewall.table import (
    CHAINS,
    FAMILIES,
    TABLE,
    TABLE_MARKER,
    TABLE_RULES,
    ChainSpec,
    Rule,
    parse_comment,
)
from reconciler.firewall.wanted import ItemKey, wanted_rules
from reconciler.state import Owner, State


@dataclass(frozen=True)
class UdpFlush:
    """Conntrack entries to forget because a UDP mapping of this host port changed."""

    version: int
    host_port: int
    host_ip: str | None


@dataclass(frozen=True)
class Transaction:
    """One atomic nft batch, plus what to do right after it commits."""

    commands: tuple[dict[str, Any], ...]
    flush: tuple[UdpFlush, ...] = ()
    added: int = 0
    deleted: int = 0

    @property
    def empty(self) -> bool:
        return not self.commands

    def document(self) -> dict[str, Any]:
        return {"nftables": list(self.commands)}


def _add_chain(family: str, name: str, spec: ChainSpec | None) -> dict[str, Any]:
    chain: dict[str, Any] = {"family": family, "table": TABLE, "name": name}
    if spec is not None:
        chain.update({"type": spec[0], "hook": spec[1], "prio": spec[2], "policy": spec[3]})
    return {"add": {"chain": chain}}


def _udp_flushes(items: Iterable[str]) -> list[UdpFlush]:
    """The flushes for the changed items that are UDP ports."""
    flushes = []
    for item in items:
        port = PortMap.parse(item.removeprefix("port "))
        if port is None or port.protocol != "udp":
            continue
        for version in port.versions:
            host_ip = port.host_ip
            if host_ip is not None and ipaddress.ip_address(host_ip).is_unspecified:
                host_ip = None
            flushes.append(UdpFlush(version, port.host_port, host_ip))
    return flushes


def transaction(desired: State, ruleset: Ruleset) -> Transaction:
    """The nft commands that make cnm's tables hold exactly `desired`'s rules for its set.

    Rules of other sets and rules without a cnm comment are never deleted; a
    table is deleted only when nothing but cnm's skeleton would remain in it.
    All deletions come first, then the additions (table, chains, rules).
    """
    for family in FAMILIES:
        if family in ruleset.tables and ruleset.foreign(family):
            raise ConflictError(
                f"nftables table {family} {TABLE} exists and is not owned by cnm "
                "(it holds rules without a cnm comment); rename or remove it"
            )
    wanted = wanted_rules(desired)
    keep = {key for key, rules in wanted.items() if rules is None}
    deletes: list[dict[str, Any]] = []
    adds: list[dict[str, Any]] = []
    changed: set[str] = set()
    counts = Counter[str]()
    for family in FAMILIES:
        want = Counter(r for rules in wanted.values() for r in rules or () if r.family == family)
        sync = _FamilySync(family, ruleset, desired.set_name, keep)
        sync.run(want)
        deletes += sync.deletes
        adds += sync.adds
        changed |= sync.changed
        counts.update(added=sync.added, deleted=sync.deleted)
    flushes = tuple(dict.fromkeys(_udp_flushes(sorted(changed))))
    return Transaction(tuple(deletes + adds), flushes, counts["added"], counts["deleted"])


def _is_cnm(rule: ObservedRule) -> bool:
    return rule.comment is not None and rule.comment.startswith("cnm/v1 ")


class _FamilySync:
    """The changes to one table (`inet cnm` or `bridge cnm`)."""

    def __init__(self, family: str, ruleset: Ruleset, set_name: str, keep: set[ItemKey]) -> None:
        self.family, self.set_name, self.keep = family, set_name, keep
        self.exists = family in ruleset.tables
        self.present = ruleset.of_family(family)
        self.chains = {name: spec for (fam, name), spec in ruleset.chains.items() if fam == family}
        self.deletes: list[dict[str, Any]] = []
        self.adds: list[dict[str, Any]] = []
        self.changed: set[str] = set()
        self.added = self.deleted = 0

    def _parsed(self, rule: ObservedRule) -> tuple[Owner, str] | None:
        return parse_comment(rule.comment)

    def _mine(self, rule: ObservedRule) -> bool:
        parsed = self._parsed(rule)
        return parsed is not None and parsed[0].set_name == self.set_name

    def _kept(self, rule: ObservedRule) -> bool:
        parsed = self._parsed(rule)
        return parsed is not None and (parsed[0].key, parsed[1]) in self.keep

    def _delete(self, rule: ObservedRule) -> None:
        self.deletes.append(rule.delete_command())
        self.deleted += 1
        parsed = self._parsed(rule)
        if parsed is not None and parsed[0].set_name == self.set_name:
            self.changed.add(parsed[1])

    def _add(self, rule: Rule) -> None:
        self.adds.append(rule.add_command())
        self.added += 1
        parsed = parse_comment(rule.comment)
        if parsed is not None and parsed[0].set_name == self.set_name:
            self.changed.add(parsed[1])

    def run(self, want: Counter[Rule]) -> None:
        others = [r for r in self.present if _is_cnm(r) and r.comment != TABLE_MARKER
                  and not self._mine(r)]
        kept = [r for r in self.present if self._kept(r)]
        if not want and not others and not kept:
            self._drop_table()
            return
        rebuilt = {name for name, spec in CHAINS[self.family].items()
                   if name not in self.chains or self.chains[name] != spec}
        if not self.exists:
            self.adds.append({"add": {"table": {"family": self.family, "name": TABLE}}})
        elif rebuilt:
            self._clear_chains(rebuilt)
        for name in CHAINS[self.family]:
            if name in rebuilt:
                self.adds.append(_add_chain(self.family, name, CHAINS[self.family][name]))
        survivors = list(self.present)
        if rebuilt and self.exists:
            # jumps into a rebuilt chain had to go with it: every table rule is re-added
            survivors = [r for r in self.present
                         if r.chain not in rebuilt and r.comment != TABLE_MARKER]
            for gone in self.present:
                if gone.chain in rebuilt and _is_cnm(gone) and gone.comment != TABLE_MARKER \
                        and not self._mine(gone):
                    self._add(gone.rule)  # another set's rule, back as it was
        table_want = Counter(TABLE_RULES[self.family])
        still = Counter(want)
        for observed in survivors:
            if observed.comment == TABLE_MARKER:
                if table_want[observed.rule] > 0:
                    table_want[observed.rule] -= 1
                else:
                    self._delete(observed)
            elif self._mine(observed) and not self._kept(observed):
                if still[observed.rule] > 0:
                    still[observed.rule] -= 1
                else:
                    self._delete(observed)
        for missing in [*sorted(table_want.elements()), *sorted(still.elements())]:
            self._add(missing)

    def _clear_chains(self, rebuilt: set[str]) -> None:
        """Delete chains that are not what cnm made (and everything that stands in the way)."""
        stale = [r for r in self.present if r.chain in rebuilt]
        if not all(_is_cnm(r) for r in stale):
            raise ConflictError(
                f"a chain of nftables table {self.family} {TABLE} was changed by hand and holds "
                "rules without a cnm comment; cnm will not delete them"
            )
        jumps = [r for r in self.present if r.comment == TABLE_MARKER and r.chain not in rebuilt]
        for rule in [*stale, *jumps]:
            self._delete(rule)
        for name in sorted(rebuilt & set(self.chains)):
            self.deletes.append({"delete": {"chain": {
                "family": self.family, "table": TABLE, "name": name}}})

    def _drop_table(self) -> None:
        """Nothing of any set is wanted here: remove the table, unless it holds foreign things."""
        if not self.exists:
            return
        foreign_chains = set(self.chains) - set(CHAINS[self.family])
        if foreign_chains or any(not _is_cnm(r) for r in self.present):
            for rule in self.present:
                if self._mine(rule):
                    self._delete(rule)
            return
        self.deletes.append({"delete": {"table": {"family": self.family, "name": TABLE}}})
        for rule in self.present:
            self.deleted += 1
            parsed = self._parsed(rule)
            if parsed is not None:
                self.changed.add(parsed[1])

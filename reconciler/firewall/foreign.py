"""The host's other firewall configuration, as data: every chain of every nftables table
that is not cnm's (iptables-nft's `ip filter`, `ip nat`... included: they are nftables
tables), and the tables of legacy iptables when the host has them.

Both arrive in one form, the one `nft -j list ruleset` prints: a rule is its list of
JSON expressions (kept as canonical text, so two readings compare byte for byte).
Legacy `iptables-save` lines are translated into the few expressions the verdict
analysis (`firewall/verdict.py`) understands; any other match becomes an
`{"unknown": ...}` expression, which the analysis never takes to match.

Pure: `kernel/host_firewall.py` does the reading.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from reconciler.firewall.expr import canonical
from reconciler.firewall.table import FAMILIES, TABLE

NFTABLES = "nftables"
LEGACY = "iptables-legacy"


@dataclass(frozen=True)
class ForeignRule:
    handle: int
    comment: str | None
    expr: str  # canonical JSON text of the expression list

    def exprs(self) -> list[Any]:
        value = json.loads(self.expr)
        return value if isinstance(value, list) else []


@dataclass(frozen=True)
class ForeignChain:
    """One chain of a table cnm does not own; `hook` is None for a regular chain."""

    source: str  # NFTABLES or LEGACY
    family: str
    table: str
    name: str
    hook: str | None = None
    type: str | None = None
    prio: int = 0
    policy: str = "accept"
    rules: tuple[ForeignRule, ...] = ()

    @property
    def place(self) -> str:
        """How plans name the chain: `table ip filter chain FORWARD`."""
        legacy = "iptables-legacy " if self.source == LEGACY else ""
        return f"{legacy}table {self.family} {self.table} chain {self.name}"


@dataclass(frozen=True)
class HostFirewall:
    """Every foreign chain, whether bridged IPv4/IPv6 frames pass the IP hooks
    (br_netfilter's `bridge-nf-call-iptables` / `-ip6tables` in this namespace), and
    firewalld's zone bindings when it runs."""

    chains: tuple[ForeignChain, ...] = ()
    bridge_nf: Mapping[int, bool] = field(default_factory=dict)
    #: interface -> firewalld zone it is bound to; None when firewalld does not run
    zones: Mapping[str, str] | None = None

    def chain(self, source: str, family: str, table: str, name: str) -> ForeignChain | None:
        return self._index.get((source, family, table, name))

    @cached_property
    def memo(self) -> dict[object, object]:
        """Answers of pure functions of this very host firewall (the verdicts of each
        network), kept as long as the object: an observation keeps one until it reads
        the ruleset again, so `cnm watch` judges an unchanged network once."""
        return {}

    @cached_property
    def _index(self) -> dict[tuple[str, str, str, str], ForeignChain]:
        return {(c.source, c.family, c.table, c.name): c for c in self.chains}

    def tables(self, source: str = NFTABLES) -> set[tuple[str, str]]:
        return {(c.family, c.table) for c in self.chains if c.source == source}


def is_cnm_table(family: str, table: str) -> bool:
    return table == TABLE and family in FAMILIES


def chains_from_nft(objects: Iterable[Mapping[str, Any]]) -> tuple[ForeignChain, ...]:
    """The chains of `nft -j list ruleset` objects, cnm's own tables left out."""
    heads: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[ForeignRule]] = {}
    for obj in objects:
        if "chain" in obj:
            chain = obj["chain"]
            key = (str(chain["family"]), str(chain["table"]), str(chain["name"]))
            heads[key] = dict(chain)
            rules.setdefault(key, [])
        elif "rule" in obj:
            rule = obj["rule"]
            key = (str(rule["family"]), str(rule["table"]), str(rule["chain"]))
            comment = rule.get("comment")
            rules.setdefault(key, []).append(ForeignRule(
                int(rule.get("handle", 0)), str(comment) if comment is not None else None,
                canonical([_without_counts(e) for e in rule.get("expr", [])]),
            ))
    chains = []
    for key, head in heads.items():
        family, table, name = key
        if is_cnm_table(family, table):
            continue
        chains.append(ForeignChain(
            NFTABLES, family, table, name,
            str(head["hook"]) if "hook" in head else None,
            str(head.get("type", "filter")) if "hook" in head else None,
            int(head.get("prio", 0)), str(head.get("policy", "accept")),
            tuple(rules.get(key, ())),
        ))
    return tuple(sorted(chains, key=lambda c: (c.family, c.table, c.name)))


def _without_counts(expr: Any) -> Any:
    """A counter without its packet and byte counts, which traffic changes."""
    if isinstance(expr, dict) and "counter" in expr:
        return {"counter": None}
    return expr


def of_state(state: object) -> HostFirewall | None:
    """The host firewall a `State` carries (`State.host_firewall`), if any."""
    found = getattr(state, "host_firewall", None)
    return found if isinstance(found, HostFirewall) else None


# --- legacy iptables (iptables-legacy-save / ip6tables-legacy-save) ---

#: Built-in chains per table: (hook, type, priority), as the kernel orders them.
_BUILTIN: Mapping[str, Mapping[str, tuple[str, str, int]]] = {
    "raw": {"PREROUTING": ("prerouting", "filter", -300), "OUTPUT": ("output", "filter", -300)},
    "mangle": {name: (name.lower(), "filter", -150) for name in
               ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")},
    "nat": {"PREROUTING": ("prerouting", "nat", -100), "INPUT": ("input", "nat", 100),
            "OUTPUT": ("output", "nat", -100), "POSTROUTING": ("postrouting", "nat", 100)},
    "filter": {"INPUT": ("input", "filter", 0), "FORWARD": ("forward", "filter", 0),
               "OUTPUT": ("output", "filter", 0)},
}
_TARGETS: dict[str, dict[str, Any]] = {
    "ACCEPT": {"accept": None}, "DROP": {"drop": None}, "RETURN": {"return": None},
    "REJECT": {"reject": None}, "MASQUERADE": {"masquerade": None}}


def chains_from_save(text: str, family: str) -> tuple[ForeignChain, ...]:
    """Chains of an `iptables-legacy-save` (family `ip`) or `ip6tables-legacy-save`
    (`ip6`) text; rule handles are positions (1, 2, ...) within their chain."""
    chains: list[ForeignChain] = []
    table = ""
    heads: dict[str, str] = {}
    rules: dict[str, list[ForeignRule]] = {}
    order: list[str] = []

    def close() -> None:
        for name in order:
            hook = _BUILTIN.get(table, {}).get(name)
            chains.append(ForeignChain(
                LEGACY, family, table, name, hook[0] if hook else None,
                hook[1] if hook else None, hook[2] if hook else 0,
                heads[name] if hook else "accept", tuple(rules[name]),
            ))

    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table, heads, rules, order = line[1:], {}, {}, []
        elif line.startswith(":"):
            name, policy = (line[1:].split() + ["-"])[:2]
            heads[name] = "drop" if policy == "DROP" else "accept"
            rules[name] = []
            order.append(name)
        elif line.startswith("-A "):
            words = shlex.split(line)
            chain = words[1]
            if chain not in rules:
                heads[chain] = "accept"
                rules[chain] = []
                order.append(chain)
            comment, exprs = _translate(words[2:], family)
            rules[chain].append(ForeignRule(len(rules[chain]) + 1, comment, canonical(exprs)))
        elif line == "COMMIT":
            close()
            order = []
    return tuple(chains)


def _translate(words: list[str], family: str) -> tuple[str | None, list[Any]]:
    """(comment, expressions) of one rule's options; what is not understood becomes
    `{"unknown": <option>}`."""
    exprs: list[Any] = []
    comment: str | None = None
    negate = False
    index = 0
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else ""
        if word == "!":
            negate = True
            index += 1
            continue
        if not word.startswith("-"):  # an option's second value (--tcp-flags MASK COMP)
            exprs.append({"unknown": word})
            index += 1
            continue
        op = "!=" if negate else "=="
        negate = False
        if word.startswith("--") and value.startswith("-"):  # a flag without a value (--syn)
            exprs.append({"unknown": f"{'! ' if op == '!=' else ''}{word}"})
            index += 1
            continue
        index += 2
        if word in ("-i", "--in-interface", "-o", "--out-interface"):
            key = "iifname" if word in ("-i", "--in-interface") else "oifname"
            name = value[:-1] + "*" if value.endswith("+") else value
            exprs.append({"match": {"op": op, "left": {"meta": {"key": key}}, "right": name}})
        elif word in ("-s", "--source", "-d", "--destination"):
            field_ = "saddr" if word in ("-s", "--source") else "daddr"
            address, _, length = value.partition("/")
            right: Any = {"prefix": {"addr": address, "len": int(length)}} if length else address
            exprs.append({"match": {"op": op, "left": {"payload": {
                "protocol": family, "field": field_}}, "right": right}})
        elif word in ("--ctstate", "--state"):
            states = sorted(s.lower() for s in value.split(","))
            exprs.append({"match": {"op": "!=" if op == "!=" else "in",
                                    "left": {"ct": {"key": "state"}}, "right": states}})
        elif word == "--ctstatus":
            statuses = sorted(s.lower() for s in value.split(","))
            exprs.append({"match": {"op": "!=" if op == "!=" else "in",
                                    "left": {"ct": {"key": "status"}}, "right": statuses}})
        elif word == "--comment":
            comment = value
        elif word == "-m" and value in ("conntrack", "state", "comment"):
            pass  # the module's own options follow
        elif word in ("-j", "--jump", "-g", "--goto"):
            target: dict[str, Any] | None = _TARGETS.get(value)
            if target is None:
                verb = "goto" if word in ("-g", "--goto") else "jump"
                target = {verb: {"target": value}}
            exprs.append(target)
            index = _skip_target_options(words, index)
        else:
            exprs.append({"unknown": f"{'! ' if op == '!=' else ''}{word} {value}".strip()})
    return comment, exprs


def _skip_target_options(words: list[str], index: int) -> int:
    """A target's own options (`--reject-with ...`) come last: nothing to match there."""
    return len(words) if any(w.startswith("--") for w in words[index:]) else index

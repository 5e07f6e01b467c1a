"""The verdict the host's other firewall configuration gives a cnm network's traffic.

nftables runs every table's base chain on a hook, and a packet dropped by any one
of them is gone: an accept in `inet cnm` cannot override a drop in `ip filter`.
So for each kind of traffic a cnm network needs (`FLOWS`), this module walks each
foreign base chain on the hooks that traffic passes, rule by rule, following jumps,
and reports the chain that would drop it (`blocked`).

"Would drop", precisely (docs/firewall.md, "Seeing the host's firewall"):

* a rule matches when every one of its matches is known to hold for the flow:
  interface names (with `*` wildcards and `!=`), the flow's addresses inside or
  outside the network's subnet, conntrack state and DNAT status, the IP family,
  `fib daddr type local` for published ports; any other match (marks, ports,
  protocols, named sets, iptables extensions) is taken NOT to match, so a report
  always names a rule or policy that certainly applies;
* the first matching `accept` ends the chain (this base chain lets it pass), a
  `drop` or `reject` is the verdict, a `jump` walks the target and comes back on
  `return` or its end, a `goto` does not come back; NAT statements accept;
* reaching the end of a base chain gives its policy.

Pure and deterministic.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.caching import memoize
from reconciler.firewall.foreign import ForeignChain, ForeignRule, HostFirewall

#: Families whose base chains see IPv4 / IPv6 packets.
_FAMILIES = {4: ("ip", "inet"), 6: ("ip6", "inet")}
_MAX_DEPTH = 16


@dataclass(frozen=True)
class Flow:
    """One kind of traffic of a network, at one hook.

    Interfaces: the bridge's name, "" for none (locally generated), None for an
    interface no rule names (the host's uplink). Addresses: True inside the
    network's subnet, False outside it (somewhere on the internet).
    """

    label: str  # how a plan names it: "between sandboxes", "outbound", ...
    hook: str
    iif: str | None
    oif: str | None
    src_inside: bool
    dst_inside: bool
    state: str = "new"
    dnat: bool = False
    local_dst: bool = False  # `fib daddr type local`: addressed to the host itself
    bridged: bool = False  # frames between two ports of the bridge (bridge family)


def flows(bridge: str, bridge_nf: bool) -> tuple[Flow, ...]:
    """The traffic a network's sandboxes need, hook by hook.

    Frames between two ports of one bridge pass the IP hooks only with
    br_netfilter's `bridge-nf-call-ip(6)tables` on; the bridge family's forward hook
    sees them always.
    """
    b = bridge
    same = (Flow("between sandboxes", "forward", b, b, True, True),) if bridge_nf else ()
    return (
        *same,
        Flow("between sandboxes", "forward", None, None, True, True, bridged=True),
        Flow("outbound", "forward", b, None, True, False),
        Flow("outbound", "postrouting", b, None, True, False),
        Flow("replies", "forward", None, b, False, True, state="established"),
        Flow("published ports", "prerouting", None, None, False, False, local_dst=True),
        Flow("published ports", "forward", None, b, False, True, dnat=True),
        Flow("published ports", "postrouting", None, b, False, True, dnat=True),
        Flow("published ports from the host", "output", "", None, False, False,
             local_dst=True),
        Flow("published ports from the host", "postrouting", "", b, False, True, dnat=True),
    )


@dataclass(frozen=True)
class Drop:
    """Where a flow is dropped: the base chain it entered, and what dropped it."""

    base: ForeignChain
    chain: ForeignChain  # the chain holding the rule (the base chain for a policy)
    rule: ForeignRule | None  # None: the base chain's policy

    def how(self) -> str:
        if self.rule is None:
            return f"policy {self.base.policy}"
        via = f" in chain {self.chain.name}" if self.chain is not self.base else ""
        return f"rule handle {self.rule.handle}{via}"


@dataclass(frozen=True)
class Blocked:
    """A network's flows that one foreign base chain drops."""

    bridge: str
    version: int
    drop: Drop
    labels: tuple[str, ...]

    def text(self, owner: str | None) -> str:
        """`forwarded traffic on br-front is dropped by table ip filter chain FORWARD,
        policy drop (Docker)`."""
        what = "forwarded traffic" if self.drop.base.hook == "forward" else "traffic"
        return (f"{what} ({', '.join(self.labels)}) on {self.bridge} is dropped by "
                f"{self.drop.base.place}, {self.drop.how()}{f' ({owner})' if owner else ''}")


def blocked(bridge: str, subnets: Sequence[str], host: HostFirewall) -> list[Blocked]:
    """Every foreign base chain that drops some flow of the network on `bridge`."""
    found: list[Blocked] = []
    if not may_drop(host):
        return found
    versions = sorted({_network(s).version for s in subnets})
    for version in versions:
        nets = [_network(s) for s in subnets if _network(s).version == version]
        walker = _Walker(host, version, nets)
        by_chain: dict[tuple[str, str, str, str], tuple[Drop, list[str]]] = {}
        for flow in flows(bridge, host.bridge_nf.get(version, False)):
            for base in _base_chains(host, version, flow):
                drop = walker.verdict(base, flow)
                if drop is None:
                    continue
                key = (base.source, base.family, base.table, base.name)
                entry = by_chain.setdefault(key, (drop, []))
                if flow.label not in entry[1]:
                    entry[1].append(flow.label)
        for key in sorted(by_chain):
            drop, labels = by_chain[key]
            found.append(Blocked(bridge, version, drop, tuple(labels)))
    return found


def _base_chains(host: HostFirewall, version: int, flow: Flow) -> Iterable[ForeignChain]:
    families = ("bridge",) if flow.bridged else _FAMILIES[version]
    for chain in host.chains:
        if chain.hook == flow.hook and chain.family in families:
            yield chain


def owner_of(host: HostFirewall, chain: ForeignChain) -> str | None:
    """Who probably made a table: Docker (its chains), firewalld (its table's name)."""
    if chain.table == "firewalld":
        return "firewalld"
    names = {c.name for c in host.chains
             if (c.source, c.family, c.table) == (chain.source, chain.family, chain.table)}
    if "DOCKER-USER" in names or "DOCKER" in names:
        return "Docker"
    return None


class _Walker:
    """Evaluates chains for one IP version of one network."""

    def __init__(self, host: HostFirewall, version: int,
                 nets: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self.host, self.version, self.nets = host, version, nets

    def verdict(self, base: ForeignChain, flow: Flow) -> Drop | None:
        """The drop `base` gives `flow`, or None when it lets it pass."""
        outcome = self._walk(base, base, flow, 0)
        if outcome == "accept":
            return None
        if isinstance(outcome, Drop):
            return outcome
        return Drop(base, base, None) if base.policy == "drop" else None

    def _walk(self, base: ForeignChain, chain: ForeignChain, flow: Flow,
              depth: int) -> str | Drop | None:
        """"accept", a `Drop`, "goto-end" (a goto's target ended), or None (fell
        through or returned: the caller goes on)."""
        if depth > _MAX_DEPTH:
            return None
        for rule in chain.rules:
            matches, actions = _compile(rule.expr)
            if not all(self._holds(e, flow) for e in matches):
                continue
            for verb, name in actions:
                if verb == "accept":
                    return "accept"
                if verb == "drop":
                    return Drop(base, chain, rule)
                if verb == "return":
                    return None
                target = self._target(chain, name)
                if target is None:
                    break
                outcome = self._walk(base, target, flow, depth + 1)
                if verb == "goto":
                    return outcome if outcome is not None else "goto-end"
                if outcome is not None:
                    return outcome
                break
        return None

    def _target(self, chain: ForeignChain, name: str) -> ForeignChain | None:
        return self.host.chain(chain.source, chain.family, chain.table, str(name))

    def _holds(self, expr: dict[str, Any], flow: Flow) -> bool:
        """True only when the match certainly holds for `flow`."""
        if "match" not in expr:
            return False  # an unknown or unreadable match
        m = expr["match"]
        op, left, right = m.get("op", "=="), m.get("left"), m.get("right")
        result = self._compare(left, right, flow)
        if result is None:
            return False
        if op in ("==", "in"):
            return result
        if op == "!=":
            return not result
        return False

    def _compare(self, left: Any, right: Any, flow: Flow) -> bool | None:
        """Whether `left` equals (or is in) `right` for the flow; None when unknown."""
        if not isinstance(left, dict):
            return None
        if "meta" in left:
            key = left["meta"].get("key")
            if key in ("iifname", "oifname") and not flow.bridged:
                return _name_in(flow.iif if key == "iifname" else flow.oif, right)
            if key == "nfproto":
                family = "ipv4" if self.version == 4 else "ipv6"
                return family in _values(right)
            return None
        if "payload" in left:
            payload = left["payload"]
            if payload.get("protocol") not in ("ip", "ip6") or flow.bridged:
                return None
            field = payload.get("field")
            if field not in ("saddr", "daddr"):
                return None
            inside = flow.src_inside if field == "saddr" else flow.dst_inside
            return self._address_in(inside, right)
        if "ct" in left:
            key = left["ct"].get("key")
            if key == "state":
                states = _values(right)
                return flow.state in states if states else None
            if key == "status":
                return flow.dnat if "dnat" in _values(right) else None
            return None
        if "fib" in left:
            fib = left["fib"]
            if fib.get("result") == "type" and "daddr" in fib.get("flags", []) \
                    and _values(right) == ["local"]:
                return flow.local_dst
        return None

    def _address_in(self, inside: bool, right: Any) -> bool | None:
        """Whether the flow's address (any of the network's subnets when `inside`)
        is in `right`; None when that depends on which address it is."""
        if not inside:
            return None  # somewhere outside: any address
        prefixes = _networks(right)
        if prefixes is None:
            return None
        if all(any(net.subnet_of(p) for p in prefixes if p.version == net.version)  # type: ignore[arg-type]
               for net in self.nets):
            return True
        if all(not net.overlaps(p) for net in self.nets for p in prefixes
               if p.version == net.version):
            return False
        return None


@memoize(maxsize=1 << 16)
def _compile(expr: str) -> tuple[tuple[dict[str, Any], ...], tuple[tuple[str, str], ...]]:
    """A rule's matches, and its verdicts in order ((verb, jump or goto target)), from
    its canonical text: parsed once per distinct rule, however many networks and flows
    are judged against it."""
    exprs = json.loads(expr)
    exprs = exprs if isinstance(exprs, list) else []
    matches = tuple(e for e in exprs if isinstance(e, dict) and _is_match(e))
    actions: list[tuple[str, str]] = []
    for e in exprs:
        verb = _verb(e) if isinstance(e, dict) else None
        if verb is not None:
            target = e[verb].get("target", "") if verb in ("jump", "goto") else ""
            actions.append((verb, str(target)))
    return matches, tuple(actions)


def may_drop(host: HostFirewall) -> bool:
    """False when no foreign chain can drop anything (no drop policy on a base chain, no
    drop or reject verdict): then no flow needs walking."""
    return any(
        (chain.hook is not None and chain.policy == "drop")
        or any(verb == "drop" for rule in chain.rules for verb, _ in _compile(rule.expr)[1])
        for chain in host.chains)


def _is_match(expr: dict[str, Any]) -> bool:
    return _verb(expr) is None and not _is_statement(expr)


_STATEMENTS = frozenset({"counter", "log", "limit", "mangle", "notrack", "ct helper",
                         "meta", "set", "quota", "flow", "tproxy", "synproxy", "dup", "fwd"})
_NAT = ("masquerade", "snat", "dnat", "redirect")


def _is_statement(expr: dict[str, Any]) -> bool:
    return any(key in _STATEMENTS for key in expr) and "match" not in expr


def _verb(expr: dict[str, Any]) -> str | None:
    """The verdict an expression gives: accept, drop, return, jump, goto; or None."""
    if "accept" in expr or any(nat in expr for nat in _NAT):
        return "accept"
    if "drop" in expr or "reject" in expr:
        return "drop"
    for verb in ("return", "jump", "goto"):
        if verb in expr:
            return verb
    return None


def _values(right: Any) -> list[str]:
    if isinstance(right, str):
        return [right]
    if isinstance(right, list):
        return [str(v) for v in right if isinstance(v, str)]
    if isinstance(right, dict) and "set" in right:
        return _values(right["set"])
    return []


def _name_in(name: str | None, right: Any) -> bool | None:
    """Whether interface `name` is one of the names in `right` (wildcards `x*`); a name
    None (an interface no rule names) is in no literal name, only in a bare `*`."""
    names = _values(right)
    if not names:
        return None
    for pattern in names:
        if pattern.endswith("*") and not pattern.endswith("\\*"):
            if name is not None and name.startswith(pattern[:-1]):
                return True
            if name is None and pattern == "*":
                return True
        elif name is not None and pattern == name:
            return True
    return False


def _networks(right: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    items = right["set"] if isinstance(right, dict) and "set" in right else \
        right if isinstance(right, list) else [right]
    found = []
    for item in items:
        try:
            if isinstance(item, str):
                found.append(_network(item))
            elif isinstance(item, dict) and "prefix" in item:
                found.append(_network(f"{item['prefix']['addr']}/{item['prefix']['len']}"))
            elif isinstance(item, dict) and "range" in item:
                return None
            else:
                return None
        except (ValueError, KeyError, TypeError):
            return None
    return found


@memoize(maxsize=1 << 12)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)

"""The packet-filtering half of the bridge driver, as data: attributes, rules, and their diff.

Firewall state is modelled as attributes of the resources that own it, so a
plan shows it under its owner (`~ Endpoint/web ports: ...`, `~ Network/front
icc: true -> false`) and never as a link replacement:

* Network: `internal`, `icc`, `masquerade` (and `forwarding.ipv4` /
  `forwarding.ipv6`, the host's forwarding switches it needs);
* Endpoint: `ports`, one `[hostIP:]hostPort->containerPort/proto` text each.

Every attribute value implies a set of nftables rules (`rules_of`); each rule
carries a comment `cnm/v1 set=<set> <Kind>/<name> <item>` naming its owner and
the item it implements. Observation works backwards (`attach`): an attribute
has a value only if the rules the kernel shows for its item are exactly the
rules cnm would write for that value, given the object as the kernel shows it.
A rule deleted, added or changed by hand therefore shows up as a difference.

`transaction()` turns (desired state, observed tables) into one list of nft
JSON commands, applied atomically. Nothing here runs a process or touches the
kernel; `reconciler/kernel/nft.py` does.

Manifest values never become rule text: rules are JSON expression trees built
from validated values (integers, canonical IP addresses, interface names).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import ConflictError
from reconciler.memo import BuildMemo
from reconciler.model import Network, PortMapping
from reconciler.state import AttrValue, Owner, Resource, ResourceKey, State

TABLE = "cnm"
#: Comment of the table's own rules (the dispatch jumps). A table named `cnm`
#: counts as cnm's when it holds a rule with a cnm comment, or no rule at all.
TABLE_MARKER = "cnm/v1 table"
FAMILIES = ("inet", "bridge")

#: Attributes this module owns. An update that changes only these needs no link step.
FIREWALL_ATTRS = frozenset(
    {"internal", "icc", "masquerade", "ports", "hairpin", "forwarding.ipv4", "forwarding.ipv6"}
)
#: Suffix of a port whose rules are present but not what cnm would write.
DIFFERS = " (rules differ)"
#: Observed value of a network setting whose rules are all gone.
MISSING = "(no rules)"

Expr = list[dict[str, Any]]
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


# --- expression builders (nft JSON, exactly in the form `nft -j list` prints) ---


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _ct(key: str) -> dict[str, Any]:
    return {"ct": {"key": key}}


def _payload(protocol: str, field_name: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field_name}}


def _prefix(subnet: str) -> dict[str, Any]:
    network = ipaddress.ip_network(subnet)
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


def _ip(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def _names(names: Sequence[str]) -> Any:
    """One interface name, or an anonymous set of them (nft prints a 1-set as its element)."""
    ordered = sorted(set(names))
    return ordered[0] if len(ordered) == 1 else {"set": ordered}


_LOCAL = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
_NOT_DNAT = _match(_ct("status"), "dnat", "!")
_DNAT = _match(_ct("status"), "dnat", "in")
_NOT_REPLY = _match(_ct("state"), {"set": ["established", "related"]}, "!=")
_DROP: dict[str, Any] = {"drop": None}
_MASQUERADE: dict[str, Any] = {"masquerade": None}
_TO_PORTS: dict[str, Any] = {"jump": {"target": "ports"}}


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
        Rule.of("inet", "prerouting", TABLE_MARKER, _LOCAL, _TO_PORTS),
        Rule.of("inet", "output", TABLE_MARKER, _LOCAL,
                _match(_payload("ip", "daddr"), _prefix("127.0.0.0/8"), "!="), _TO_PORTS),
        Rule.of("inet", "output", TABLE_MARKER, _LOCAL,
                _match(_payload("ip6", "daddr"), "::1", "!="), _TO_PORTS),
    ),
    "bridge": (),
}


# --- published ports -----------------------------------------------------------

_PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9a-f:]+\]|[0-9.]+):)?(?P<host>[0-9]{1,5})->(?P<container>[0-9]{1,5})"
    r"/(?P<proto>tcp|udp)$"
)


@dataclass(frozen=True, order=True)
class PortMap:
    """One published port in canonical form (hostIP None: every address of every family)."""

    protocol: str
    host_port: int
    container_port: int
    host_ip: str | None = None

    @classmethod
    def of(cls, port: PortMapping) -> PortMap:
        host_ip = str(port.host_ip) if port.host_ip is not None else None
        return cls(port.protocol, port.host_port, port.container_port, host_ip)

    @property
    def versions(self) -> tuple[int, ...]:
        """IP versions this port is published on."""
        if self.host_ip is None:
            return (4, 6)
        return (ipaddress.ip_address(self.host_ip).version,)

    def text(self) -> str:
        where = ""
        if self.host_ip is not None:
            where = f"[{self.host_ip}]:" if ":" in self.host_ip else f"{self.host_ip}:"
        return f"{where}{self.host_port}->{self.container_port}/{self.protocol}"

    @classmethod
    def parse(cls, text: str) -> PortMap | None:
        """The port a text names, or None if cnm would never have written it."""
        found = _PORT_RE.match(text)
        if found is None:
            return None
        host_ip = found["ip"].strip("[]") if found["ip"] else None
        try:
            if host_ip is not None:
                host_ip = str(ipaddress.ip_address(host_ip))
        except ValueError:
            return None
        port = cls(found["proto"], int(found["host"]), int(found["container"]), host_ip)
        if not (0 < port.host_port < 65536 and 0 < port.container_port < 65536):
            return None
        return port if port.text() == text else None


def port_rules(comment: str, port: PortMap, addresses: Mapping[int, str]) -> list[Rule]:
    """DNAT rules of one published port, one per IP version the endpoint has an address in."""
    rules = []
    for version in port.versions:
        target = addresses.get(version)
        if target is None:
            continue
        if port.host_ip is None or ipaddress.ip_address(port.host_ip).is_unspecified:
            where = _match(_meta("nfproto"), f"ipv{version}")
        else:
            where = _match(_payload(_ip(version), "daddr"), port.host_ip)
        rules.append(Rule.of(
            "inet", "ports", comment,
            where,
            _match(_payload(port.protocol, "dport"), port.host_port),
            {"dnat": {"family": _ip(version), "addr": target, "port": port.container_port}},
        ))
    return rules


# --- network rules -------------------------------------------------------------


def isolation_rules(
    comment: str, bridge: str, subnets: Sequence[str], internal: bool
) -> list[Rule]:
    """Nothing new enters the network from elsewhere (published ports excepted); if
    internal, nothing leaves it either. Otherwise hairpin traffic (a sandbox reaching a
    published port of the host that leads back into this network) is masqueraded so
    that replies come back through the host."""
    rules = [Rule.of(
        "inet", "forward", comment,
        _match(_meta("oifname"), bridge), _match(_meta("iifname"), bridge, "!="),
        _NOT_REPLY, _NOT_DNAT, _DROP,
    )]
    if internal:
        rules.append(Rule.of(
            "inet", "forward", comment,
            _match(_meta("iifname"), bridge), _match(_meta("oifname"), bridge, "!="), _DROP,
        ))
        return rules
    for subnet in subnets:
        version = ipaddress.ip_network(subnet).version
        rules.append(Rule.of(
            "inet", "postrouting", comment,
            _match(_meta("oifname"), bridge),
            _match(_payload(_ip(version), "saddr"), _prefix(subnet)),
            _DNAT, _MASQUERADE,
        ))
    return rules


def icc_rules(comment: str, bridge: str, veths: Sequence[str], icc: bool) -> list[Rule]:
    """icc off: frames between the network's ports are dropped in the bridge forward
    hook; same-bridge IP traffic is also dropped in the inet forward hook, where it
    appears when br_netfilter passes bridged traffic to IP hooks."""
    if icc:
        return []
    rules = [Rule.of(
        "inet", "forward", comment,
        _match(_meta("iifname"), bridge), _match(_meta("oifname"), bridge), _NOT_DNAT, _DROP,
    )]
    if veths:
        rules.append(Rule.of("bridge", "forward", comment,
                             _match(_meta("iifname"), _names(veths)), _DROP))
    return rules


def masquerade_rules(
    comment: str, bridge: str, subnets: Sequence[str], masquerade: bool
) -> list[Rule]:
    """Traffic from the network's subnets that leaves through another interface."""
    if not masquerade:
        return []
    rules = []
    for subnet in subnets:
        version = ipaddress.ip_network(subnet).version
        rules.append(Rule.of(
            "inet", "postrouting", comment,
            _match(_payload(_ip(version), "saddr"), _prefix(subnet)),
            _match(_meta("oifname"), bridge, "!="), _MASQUERADE,
        ))
    return rules


# --- attributes of desired resources ---------------------------------------------


def network_attrs(network: Network) -> dict[str, AttrValue]:
    """Firewall attributes of a bridge network, as the manifest asks."""
    spec = network.spec
    attrs: dict[str, AttrValue] = {
        "internal": spec.internal,
        "icc": spec.icc,
        "masquerade": spec.masquerade and not spec.internal,
    }
    if not spec.internal:
        for version in sorted({pool.subnet.version for pool in spec.ipam}):
            attrs[f"forwarding.ipv{version}"] = True
    return attrs


def endpoint_attrs(ports: Sequence[PortMapping]) -> dict[str, AttrValue]:
    """The published ports of an endpoint, canonical and sorted; and hairpin mode on its
    bridge port when it publishes any, so that it can reach itself through them."""
    texts = {PortMap.of(p).text() for p in ports}
    return {"ports": sorted_ports(texts), "hairpin": bool(ports)}


def sorted_ports(texts: Iterable[str]) -> tuple[str, ...]:
    """Port texts in reading order: by host port, then protocol and host address."""

    def key(text: str) -> tuple[int, str, str, str]:
        port = PortMap.parse(text.removesuffix(DIFFERS))
        if port is None:
            return (1 << 16, "", "", text)
        return (port.host_port, port.protocol, port.host_ip or "", text)

    return tuple(sorted(set(texts), key=key))


def summary(resource: Resource) -> str:
    """What a create or delete line adds about the firewall: settings other than the
    defaults, and published ports."""
    if resource.key.kind == "Network":
        flags = [("internal", resource.get("internal") is True),
                 ("icc off", resource.get("icc") is False),
                 ("no masquerade", resource.get("masquerade") is False
                  and resource.get("internal") is False)]
        text = ", ".join(name for name, on in flags if on)
    else:
        ports = resource.get("ports")
        text = "ports " + ", ".join(str(p) for p in ports) if isinstance(ports, tuple) and ports \
            else ""
    if rules_only(resource):
        return f"firewall rules only (its links are gone){'  ' + text if text else ''}"
    return text


def rules_only(resource: Resource) -> bool:
    """A resource observation made up from rules whose owner has no link left."""
    return bool(resource.attrs) and set(resource.attrs) <= FIREWALL_ATTRS


def network_spec(resource: Resource) -> dict[str, Any]:
    """Manifest fields (`cnm export`) for a network's firewall settings that are not defaults."""
    spec: dict[str, Any] = {}
    if resource.get("internal") is True:
        spec["internal"] = True
    if resource.get("icc") is False:
        spec["icc"] = False
    if resource.get("masquerade") is False and resource.get("internal") is False:
        spec["masquerade"] = False
    return spec


def ports_spec(resource: Resource) -> list[dict[str, Any]]:
    """Manifest `ports` (`cnm export`) for an endpoint's published ports that cnm wrote."""
    ports = resource.get("ports")
    result = []
    for text in ports if isinstance(ports, tuple) else ():
        port = PortMap.parse(str(text))
        if port is None:
            continue  # rules that differ: not something a manifest says
        entry: dict[str, Any] = {"containerPort": port.container_port, "hostPort": port.host_port}
        if port.protocol != "tcp":
            entry["protocol"] = port.protocol
        if port.host_ip is not None:
            entry["hostIP"] = port.host_ip
        result.append(entry)
    return result


# --- rules of a whole state ---------------------------------------------------------

ItemKey = tuple[ResourceKey, str]
#: item -> the rules it must have; None: leave whatever the kernel has (value unknown)
Wanted = dict[ItemKey, list[Rule] | None]


def comment_of(owner: Owner, item: str) -> str:
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


def _text_attr(resource: Resource, name: str) -> str | None:
    value = resource.get(name)
    return value if isinstance(value, str) else None


def _subnets(resource: Resource) -> list[str]:
    value = resource.get("subnets")
    return [str(v) for v in value] if isinstance(value, tuple) else []


def _addresses(resource: Resource) -> dict[int, str]:
    """IP version -> the endpoint's address (without prefix length)."""
    found: dict[int, str] = {}
    for version in (4, 6):
        held = resource.get(f"ipv{version}")  # a tuple of "address/prefix"
        if isinstance(held, tuple) and held:
            found[version] = str(ipaddress.ip_interface(str(held[0])).ip)
    return found


def _veths_by_network(state: State) -> dict[str, list[str]]:
    veths: dict[str, list[str]] = defaultdict(list)
    for endpoint in state.of_kind("Endpoint"):
        network, veth = endpoint.get("network"), endpoint.get("veth")
        if isinstance(network, str) and isinstance(veth, str):
            veths[network].append(veth)
    return veths


def _is_firewalled(resource: Resource) -> bool:
    return resource.key.kind == "Network" and "internal" in resource.attrs


def wanted_rules(state: State) -> Wanted:
    """Every item of every resource of `state`, with the rules its current value implies."""
    wanted: Wanted = {}
    veths = _veths_by_network(state)
    for resource in state:
        if _is_firewalled(resource):
            owner = resource.owner
            bridge = _text_attr(resource, "bridge")
            if bridge is None:
                for item in ("isolation", "icc", "masquerade"):
                    wanted[(resource.key, item)] = None
                continue
            subnets = _subnets(resource)
            mine = veths.get(resource.key.name, [])
            internal, icc, masq = (resource.get(a) for a in ("internal", "icc", "masquerade"))
            wanted[(resource.key, "isolation")] = (
                isolation_rules(comment_of(owner, "isolation"), bridge, subnets, internal)
                if isinstance(internal, bool) else None
            )
            wanted[(resource.key, "icc")] = (
                icc_rules(comment_of(owner, "icc"), bridge, mine, icc)
                if isinstance(icc, bool) else None
            )
            wanted[(resource.key, "masquerade")] = (
                masquerade_rules(comment_of(owner, "masquerade"), bridge, subnets, masq)
                if isinstance(masq, bool) else None
            )
        ports = resource.get("ports")
        if resource.key.kind == "Endpoint" and isinstance(ports, tuple) and ports:
            owner = resource.owner
            addresses = _addresses(resource)
            for text in (str(p) for p in ports):
                port = PortMap.parse(text)
                item = f"port {text.removesuffix(DIFFERS)}"
                wanted[(resource.key, item)] = (
                    None if port is None
                    else port_rules(comment_of(owner, item), port, addresses)
                )
    return wanted


# --- what the kernel shows ------------------------------------------------------------


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


def needed_tables(resource: Resource) -> list[str]:
    """The nftables tables a desired resource's rules live in (for conflict checks)."""
    if not _is_firewalled(resource):
        return []
    tables = [f"nft:table inet {TABLE}"]
    if resource.get("icc") is False:
        tables.append(f"nft:table bridge {TABLE}")
    return tables


# --- observed attributes ----------------------------------------------------------------


def _choose(actual: Counter[Rule], candidates: Sequence[tuple[AttrValue, list[Rule]]]) -> AttrValue:
    """The value whose rules are exactly the ones present; None if no value fits."""
    for value, rules in candidates:
        if actual == Counter(rules):
            return value
    return None


def _owned_items(state: State, ruleset: Ruleset) -> dict[ResourceKey, dict[str, Counter[Rule]]]:
    """This set's rules by owner and item; rules of a table whose skeleton is broken
    count as absent (without their base chains they have no effect)."""
    items: dict[ResourceKey, dict[str, Counter[Rule]]] = defaultdict(lambda: defaultdict(Counter))
    intact = {family: ruleset.infra_intact(family) for family in FAMILIES}
    for observed in ruleset.rules:
        parsed = parse_comment(observed.comment)
        if parsed is None or not intact[observed.family]:
            continue
        owner, item = parsed
        if owner.set_name == state.set_name:
            items[owner.key][item][observed.rule] += 1
    return items


#: Endpoint views of the previous `attach` by their inputs (the observed resource, its
#: rules, its port's hairpin flag): a long-running `cnm watch` attaches the firewall
#: to a thousand unchanged endpoints after every link change.
_endpoint_views: BuildMemo[ResourceKey, Resource] = BuildMemo()


def attach(
    state: State,
    ruleset: Ruleset,
    forwarding: Mapping[int, bool],
    hairpin: Mapping[str, bool] | None = None,
) -> State:
    """The observed state with each resource's firewall attributes read from the rules,
    the forwarding switches (IP version -> on) and bridge ports (name -> hairpin on).

    Rules whose owner has no other kernel object (its links were deleted by
    hand) become a resource of their own, so that a plan prunes or replaces it.
    """
    memo = _endpoint_views.next_build()
    items = _owned_items(state, ruleset)
    veths = _veths_by_network(state)
    resources: dict[ResourceKey, Resource] = dict(state.resources)
    for key in sorted(set(items) - set(resources)):
        if key.kind not in ("Network", "Endpoint"):
            continue  # no cnm rule has another owner; a forged one is left to its maker
        if key.kind == "Network":
            attrs: dict[str, AttrValue] = {"internal": None, "icc": None, "masquerade": None}
        else:
            attrs = {"ports": sorted_ports(
                item.removeprefix("port ") + DIFFERS for item in items[key]
            )}
        resources[key] = Resource(key, state.set_name, attrs)
    for key, resource in sorted(resources.items()):
        mine = items.get(key, {})
        extra: dict[str, AttrValue] = {}
        bridge = _text_attr(resource, "bridge")
        if key.kind == "Network" and bridge is not None:
            extra = _network_view(resource, bridge, mine, veths.get(key.name, []))
            extra.update({f"forwarding.ipv{v}": on for v, on in sorted(forwarding.items())})
        elif key.kind == "Endpoint" and "veth" in resource.attrs:
            veth = _text_attr(resource, "veth")
            port_on = (hairpin or {}).get(veth) if veth is not None else None
            inputs = (resource, mine, port_on)
            view = memo.get(key, inputs)
            if view is None:
                extra = {"ports": _ports_view(resource, mine), "hairpin": port_on}
                view = memo.put(key, inputs, resource.extended(extra))
            resources[key] = view
            continue
        if extra:
            resources[key] = resource.extended(extra)
    return State(
        state.set_name, resources, {**state.occupied, **occupied(ruleset)}, state.orphans,
        state.reserved_prefixes,
    )


def _network_view(
    resource: Resource, bridge: str, mine: Mapping[str, Counter[Rule]], veths: Sequence[str]
) -> dict[str, AttrValue]:
    owner, subnets = resource.owner, _subnets(resource)
    none: Counter[Rule] = Counter()

    def comment(item: str) -> str:
        return comment_of(owner, item)

    internal = _choose(mine.get("isolation", none), [
        (value, isolation_rules(comment("isolation"), bridge, subnets, value))
        for value in (False, True)
    ])
    icc = _choose(mine.get("icc", none), [
        (value, icc_rules(comment("icc"), bridge, veths, value)) for value in (True, False)
    ])
    masquerade = _choose(mine.get("masquerade", none), [
        (value, masquerade_rules(comment("masquerade"), bridge, subnets, value))
        for value in (False, True)
    ])
    strays = bool(set(mine) - {"isolation", "icc", "masquerade"})
    if strays:
        internal = None  # rules cnm would not write for a network: show them as drift
    values = {"internal": internal, "icc": icc, "masquerade": masquerade}
    return {
        name: value if value is not None
        else MISSING if not mine.get("isolation" if name == "internal" else name) and not strays
        else DIFFERS.strip()
        for name, value in values.items()
    }


def _ports_view(resource: Resource, mine: Mapping[str, Counter[Rule]]) -> tuple[str, ...]:
    if not mine:
        return sorted_ports([])  # most endpoints publish nothing: no address to parse
    addresses = _addresses(resource)
    texts = []
    for item, present in mine.items():
        text = item.removeprefix("port ")
        port = PortMap.parse(text) if item.startswith("port ") else None
        expected = port_rules(comment_of(resource.owner, item), port, addresses) if port else None
        texts.append(text if expected is not None and present == Counter(expected)
                     else text + DIFFERS)
    return sorted_ports(texts)


# --- the transaction ------------------------------------------------------------------------


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
    flushes = []
    for item in items:
        port = PortMap.parse(item.removeprefix("port ").removesuffix(DIFFERS))
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

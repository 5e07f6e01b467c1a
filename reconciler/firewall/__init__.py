"""The packet-filtering half of the bridge driver, as data: attributes, rules, and their diff.

Firewall state is modelled as attributes of the resources that own it, so a
plan shows it under its owner (`~ Endpoint/web ports: ...`, `~ Network/front
icc: true -> false`) and never as a link replacement:

* Network: `internal`, `icc`, `masquerade`, `localhost` (and `forwarding.ipv4` /
  `forwarding.ipv6`, the host's forwarding switches it needs, and `route_localnet`,
  its bridge's switch that `localhost` needs);
* Endpoint: `ports`, one `[hostIP:]hostPort->containerPort/proto` text each.

Every attribute value implies a set of nftables rules (`wanted_rules`); each rule
carries a comment `cnm/v1 set=<set> <Kind>/<name> <item>` naming its owner and
the item it implements. Observation works backwards (`attach`): an attribute
has a value only if the rules the kernel shows for its item are exactly the
rules cnm would write for that value, given the object as the kernel shows it.
A rule deleted, added or changed by hand therefore shows up as a difference:
a `state.Drift`, which no desired value equals.

`transaction()` turns (desired state, observed tables) into one list of nft
JSON commands, applied atomically. Nothing here runs a process or touches the
kernel; `reconciler/kernel/nft.py` does.

Manifest values never become rule text: rules are JSON expression trees built
from validated values (integers, canonical IP addresses, interface names).

The modules, each depending only on those above it:

* `expr`: nft JSON expressions and their canonical text;
* `table`: cnm's tables and chains, `Rule`, rule comments;
* `ports`: published ports (`PortMap`) and their DNAT rules;
* `network_rules`: the rules of a network's settings;
* `attributes`: attribute values as the manifest asks, and their words in plans
  and exports;
* `wanted`: the rules a whole state implies;
* `ruleset`: what the kernel shows (`Ruleset`);
* `observed`: attributes read back from the rules (`attach`);
* `batch`: the transaction.

Every name other modules use is re-exported here (`from reconciler import firewall;
firewall.attach(...)`), and each module is loaded when one of its names is first used:
a command that needs only the attributes (`cnm validate`) does not load the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names as mypy sees them; at run time `__getattr__` loads them
    from reconciler.firewall.attributes import (
        FIREWALL_ATTRS,
        endpoint_attrs,
        network_attrs,
        network_spec,
        ports_spec,
        rules_only,
        summary,
    )
    from reconciler.firewall.batch import Transaction, UdpFlush, transaction
    from reconciler.firewall.expr import Expr, canonical
    from reconciler.firewall.network_rules import icc_rules, isolation_rules, masquerade_rules
    from reconciler.firewall.observed import NO_RULES, RULES_DIFFER, attach
    from reconciler.firewall.ports import PortMap, port_rules, sorted_ports
    from reconciler.firewall.ruleset import ObservedRule, Ruleset, occupied
    from reconciler.firewall.table import (
        CHAINS,
        FAMILIES,
        TABLE,
        TABLE_MARKER,
        TABLE_RULES,
        ChainSpec,
        Rule,
        comment_of,
        parse_comment,
    )
    from reconciler.firewall.wanted import (
        ItemKey,
        Wanted,
        bridge_names,
        needed_tables,
        wanted_localnet,
        wanted_rules,
    )

#: The module each re-exported name lives in.
_MODULES: dict[str, tuple[str, ...]] = {
    "attributes": (
        "FIREWALL_ATTRS", "endpoint_attrs", "network_attrs", "network_spec", "ports_spec",
        "rules_only", "summary",
    ),
    "batch": ("Transaction", "UdpFlush", "transaction"),
    "expr": ("Expr", "canonical"),
    "network_rules": ("icc_rules", "isolation_rules", "masquerade_rules"),
    "observed": ("NO_RULES", "RULES_DIFFER", "attach"),
    "ports": ("PortMap", "port_rules", "sorted_ports"),
    "ruleset": ("ObservedRule", "Ruleset", "occupied"),
    "table": (
        "CHAINS", "FAMILIES", "TABLE", "TABLE_MARKER", "TABLE_RULES", "ChainSpec", "Rule",
        "comment_of", "parse_comment",
    ),
    "wanted": ("ItemKey", "Wanted", "bridge_names", "needed_tables", "wanted_localnet",
               "wanted_rules"),
}
_HOMES = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "CHAINS", "ChainSpec", "Expr", "FAMILIES", "FIREWALL_ATTRS", "ItemKey", "NO_RULES",
    "ObservedRule", "PortMap", "RULES_DIFFER", "Rule", "Ruleset", "TABLE", "TABLE_MARKER",
    "TABLE_RULES", "Transaction", "UdpFlush", "Wanted", "attach", "bridge_names", "canonical",
    "comment_of",
    "endpoint_attrs", "icc_rules", "isolation_rules", "masquerade_rules", "needed_tables",
    "network_attrs", "network_spec", "occupied", "parse_comment", "port_rules", "ports_spec",
    "rules_only", "sorted_ports", "summary", "transaction", "wanted_localnet", "wanted_rules",
]

if not TYPE_CHECKING:  # hidden from mypy, so that a misspelt name stays an error

    def __getattr__(name: str) -> object:
        """Load the module `name` lives in (PEP 562); then the name is a plain global."""
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value
        return value

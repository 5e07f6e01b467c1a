"""The firewall's part of apply: cnm's nftables tables, the forwarding switches,
the hairpin mode of endpoint bridge ports, UDP conntrack flushes. (Observation
reads them back in `kernel/live.py`.)

Two steps of the phase table are carried out here rather than by
`kernel/apply.py`: `update Firewall/<set>` first (one nft transaction, so
deletes remove rules before the links they name, and isolation exists before
a new bridge comes up; then forwarding is turned on), and
`update BridgePorts/<set>` last (hairpin mode on the host ends of endpoints
that publish ports, and each bridge's `route_localnet`, which exist only once
their links do).
"""

from __future__ import annotations

from collections.abc import Collection

from reconciler import firewall
from reconciler.errors import KernelError
from reconciler.kernel import brport, conntrack, nft, sysctl
from reconciler.kernel.rtnl import Rtnl
from reconciler.plan import BRIDGE_PORTS, FIREWALL, Step
from reconciler.progress import Progress, StepDetail
from reconciler.state import ResourceKey, State


def sync_rules(desired: State, progress: Progress | None = None) -> firewall.Transaction:
    """Make cnm's tables hold `desired`'s rules (one transaction), forget the UDP
    conntrack entries of changed mappings, and turn on the forwarding it needs."""
    tx = firewall.transaction(desired, nft.read_ruleset())
    nft.run_transaction(tx)
    if progress is not None and not tx.empty:
        progress(StepDetail(f"nftables: {tx.deleted} rules removed, {tx.added} added, "
                            "one transaction"))
    for version in (4, 6):
        targets = {(f.host_port, f.host_ip) for f in tx.flush if f.version == version}
        try:
            conntrack.flush_udp(version, targets)
        except OSError as exc:
            raise KernelError(f"flushing UDP conntrack entries failed: {exc}") from exc
    wanted = {
        version for network in desired.of_kind("Network") for version in (4, 6)
        if network.get(f"forwarding.ipv{version}") is True
    }
    current = sysctl.forwarding()
    for version in sorted(wanted):
        if current.get(version) is False:
            sysctl.enable_forwarding(version)
    return tx


#: Up to this many endpoints, their ports are looked up one by one instead of dumping
#: every bridge port of the host (a thousand ports take ~20 ms to dump).
FEW_PORTS = 32


def sync_bridge_ports(desired: State, only: Collection[str] | None = None) -> None:
    """Hairpin mode on the bridge ports of endpoints as desired (after their links exist).

    `only`: the endpoints this plan creates or changes (the others already match,
    or the plan would hold them); None checks every endpoint.
    """
    _sync_route_localnet(desired)
    if only is not None and len(only) <= FEW_PORTS:
        _sync_some_ports(desired, only)
        return
    ports = brport.hairpin_ports()
    for endpoint in desired.of_kind("Endpoint"):
        wanted, veth = endpoint.get("hairpin"), endpoint.get("veth")
        if not isinstance(wanted, bool) or not isinstance(veth, str) or veth not in ports:
            continue
        index, on = ports[veth]
        if on != wanted:
            brport.set_hairpin(index, wanted)


def _sync_route_localnet(desired: State) -> None:
    """Each bridge's `route_localnet` as desired (the published ports on 127.0.0.1 need it;
    it can only be set once the bridge exists, hence here and not with the rules)."""
    wanted = firewall.wanted_localnet(desired)
    for bridge, on in sysctl.route_localnet(wanted).items():
        if on != wanted[bridge]:
            sysctl.set_route_localnet(bridge, wanted[bridge])


def _sync_some_ports(desired: State, names: Collection[str]) -> None:
    with Rtnl() as host:
        for name in sorted(names):
            endpoint = desired.get(ResourceKey("Endpoint", name))
            if endpoint is None:
                continue
            wanted, veth = endpoint.get("hairpin"), endpoint.get("veth")
            if not isinstance(wanted, bool) or not isinstance(veth, str):
                continue
            link = host.link(veth)
            if link is None or link.master is None:
                continue  # not (yet) a bridge port: nothing to set, as with the dump
            if brport.hairpin_of(link.index) != wanted:
                brport.set_hairpin(link.index, wanted)


def run_own_step(
    step: Step, desired: State, progress: Progress | None = None,
    endpoints: Collection[str] | None = None,
) -> bool:
    """Carry out `step` if it is the firewall's; False when the link steps must run it."""
    kind = step.action.key.kind
    try:
        if kind == FIREWALL:
            sync_rules(desired, progress)
            return True
        if kind == BRIDGE_PORTS:
            sync_bridge_ports(desired, endpoints)
            return True
    except OSError as exc:
        raise KernelError(f"{step.action.key}: {step.verb} failed: {exc.strerror or exc}") from exc
    changes = step.action.changes
    # an update of firewall attributes only: the two steps above do all of it
    return step.verb == "update" and bool(changes) and all(
        change.path in firewall.FIREWALL_ATTRS for change in changes
    )

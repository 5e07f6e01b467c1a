"""Apply: one small idempotent step per (verb, kind).

Each step re-reads what it is about to touch, succeeds when its work is
already done, and never changes or deletes a link or namespace that does not
carry this object's marker. Links are created with cnm's link group in the
same netlink message (the crash-safe part of the marker), then labelled.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reconciler import faults
from reconciler.errors import ConflictError, KernelError
from reconciler.kernel import files, netns
from reconciler.kernel.observe import RT_TABLE_MAIN, global_addresses
from reconciler.kernel.rtnl import Link, Rtnl
from reconciler.kernel.session import KernelSession
from reconciler.naming import CNM_LINK_GROUP
from reconciler.plan import Step, StepVerb
from reconciler.state import Owner, Resource, ResourceKey, State, endpoint_marker

#: `lo` is the first link of every network namespace.
LOOPBACK_INDEX = 1

#: How long to wait for the kernel to destroy a removed namespace's links.
NETNS_TEARDOWN_GRACE = 2.0

#: errno values worth a retry: the kernel was busy, not wrong.
_RETRYABLE = {errno.EBUSY, errno.EAGAIN, errno.EINTR}


@dataclass
class ApplyContext:
    """What a step may consult besides its own resource; one per executed plan.

    Mutable on purpose: the steps fill `dying`, `bridges` and the endpoint
    index as the plan runs, and later steps of the same plan read them.
    """

    session: KernelSession
    desired: State
    observed: State
    #: veth host ends whose namespace was removed: the kernel deletes them soon.
    dying: list[tuple[str, Owner]] = field(default_factory=list)
    #: bridge ifindex per network name, filled on first use
    bridges: dict[str, int] = field(default_factory=dict)
    #: netns names this plan removes (their endpoints go with them)
    removed_sandboxes: frozenset[str] = frozenset()
    _by_sandbox: dict[str, list[Resource]] = field(default_factory=dict)

    def endpoints_in(self, sandbox: str) -> list[Resource]:
        """Observed endpoints of `sandbox` (indexed on first use: deletes ask per sandbox)."""
        if not self._by_sandbox:
            for resource in self.observed.of_kind("Endpoint"):
                self._by_sandbox.setdefault(str(resource.get("sandbox")), []).append(resource)
        return self._by_sandbox.get(sandbox, [])


StepFn = Callable[[ApplyContext, Resource], None]


def _claim_link(rtnl: Rtnl, name: str, owner: Owner) -> Link | None:
    """The link `name` if it is ours (or a cnm orphan to adopt); None if absent; else refuse."""
    link = rtnl.link(name)
    if link is None:
        return None
    if Owner.parse(link.alias) == owner or (not link.alias and link.group == CNM_LINK_GROUP):
        return link
    raise ConflictError(f"{owner.key}: link {name} exists and is not owned by it ({link.alias!r})")


def _text_values(resource: Resource, *attrs: str) -> list[str]:
    values: list[str] = []
    for attr in attrs:
        value = resource.get(attr)
        if isinstance(value, tuple):
            values += [str(v) for v in value]
        elif isinstance(value, str):
            values += [v.strip() for v in value.split(",")]
    return values


def _int(resource: Resource, attr: str) -> int:
    return int(str(resource.get(attr)))


def _sync_addresses(rtnl: Rtnl, index: int, wanted: list[str]) -> None:
    """Make the link's global addresses exactly `wanted` ("addr/prefix")."""
    current = set(global_addresses(rtnl).get(index, []))
    for text in sorted(current - set(wanted)):
        rtnl.delete_address(index, text)
    for text in sorted(set(wanted) - current):
        rtnl.add_address(index, text)


def _sync_default_route(rtnl: Rtnl, index: int, version: int, gateway: str | None) -> None:
    """Make the main table's default route of this family via link `index` go to `gateway`."""
    for route in rtnl.routes():
        if (route.version, route.dst_len, route.table, route.oif) != (
            version, 0, RT_TABLE_MAIN, index
        ) or route.gateway is None:
            continue
        if route.gateway == gateway:
            return
        rtnl.delete_default_route(index, route.gateway)
    if gateway is not None:
        rtnl.replace_default_route(index, gateway)


# --- Sandbox -----------------------------------------------------------------


def _label_loopback(owner: Owner) -> Callable[[], None]:
    """Runs inside the new namespace, before it gets its name."""

    def setup() -> None:
        with Rtnl() as rtnl:
            rtnl.set_link(LOOPBACK_INDEX, alias=owner.marker(), up=True)

    return setup


def _owned_netns(ctx: ApplyContext, name: str, owner: Owner) -> bool:
    """True if netns `name` exists and is this sandbox's; refuse if it is someone else's."""
    if not netns.is_netns(netns.netns_path(name)):
        return False
    if _seen_as_ours(ctx, name, owner):
        return True
    loopback = _loopback(ctx.session.rtnl(name))
    if loopback.alias != owner.marker():
        raise ConflictError(
            f"{owner.key}: netns {name} exists and is not owned by it ({loopback.alias!r})"
        )
    return True


def _seen_as_ours(ctx: ApplyContext, name: str, owner: Owner) -> bool:
    """True when this apply observed netns `name` labelled as `owner`'s, and it is still
    that very namespace (under the apply lock, nobody else of cnm relabels it)."""
    seen = ctx.session.netns_seen.get(name)
    return seen is not None and seen == (netns.identity(name), owner.marker())


def _loopback(rtnl: Rtnl) -> Link:
    return next(link for link in rtnl.links() if link.index == LOOPBACK_INDEX)


def create_sandbox(ctx: ApplyContext, resource: Resource) -> None:
    name = str(resource.get("netns"))
    if not _owned_netns(ctx, name, resource.owner):
        netns.create_netns(name, _label_loopback(resource.owner))
        faults.point(f"{resource.key}: netns created, files not yet written")
        files.write_files(name, dict(resource.attrs))
        return
    update_sandbox(ctx, resource)


def update_sandbox(ctx: ApplyContext, resource: Resource) -> None:
    """Relabel and raise `lo` only if needed; rewrite only the files that differ.

    When this apply observed the very same namespace as this sandbox's with `lo`
    up, `lo` is not asked again: adding a peer to a big network updates the hosts
    file of every sandbox on it, and one links dump each would double the cost.
    """
    name = str(resource.get("netns"))
    observed = ctx.observed.get(resource.key)
    known_good = (
        observed is not None and observed.get("lo_up") is True
        and _seen_as_ours(ctx, name, resource.owner)
    )
    if not known_good:
        rtnl = ctx.session.rtnl(name)
        loopback = _loopback(rtnl)
        if loopback.alias != resource.owner.marker() or not loopback.up:
            rtnl.set_link(LOOPBACK_INDEX, alias=resource.owner.marker(), up=True)
    # The files as observed, when this apply saw this very namespace as this sandbox's.
    seen = observed.attrs if known_good and observed is not None else None
    files.write_files(name, resource.attrs, seen)


def delete_sandbox(ctx: ApplyContext, resource: Resource) -> None:
    """Files first, then the namespace: a crash in between leaves a labelled namespace
    that the next apply still sees (and removes), never files nobody owns."""
    name = str(resource.get("netns"))
    if _owned_netns(ctx, name, resource.owner):
        files.remove_files(name)
        faults.point(f"{resource.key}: files removed, netns not yet")
        ctx.session.forget(name)
        netns.remove_netns(name)
        ctx.dying.extend(
            (str(r.get("veth")), r.owner)
            for r in ctx.endpoints_in(resource.key.name)
            if r.get("veth") is not None
        )
    else:  # the namespace is gone already: files a crash left behind
        files.remove_files(name)


def settle_teardown(ctx: ApplyContext) -> None:
    """Wait for the veth pairs of removed namespaces to disappear.

    The kernel destroys a namespace in a work queue, in batches: waiting once
    for all of them after the delete phases costs one teardown, not one per
    sandbox. A host end still there after the grace period is deleted.
    """
    host = ctx.session.rtnl(None)
    deadline = time.monotonic() + NETNS_TEARDOWN_GRACE
    for veth, owner in ctx.dying:
        while host.link(veth) is not None and time.monotonic() < deadline:
            time.sleep(0.002)
        link = _claim_link(host, veth, owner)
        if link is not None:
            host.delete_link(link.index)
    ctx.dying.clear()


# --- Network (bridge) ----------------------------------------------------------


def create_network(ctx: ApplyContext, resource: Resource) -> None:
    host = ctx.session.rtnl(None)
    name = str(resource.get("bridge"))
    if _claim_link(host, name, resource.owner) is None:
        # No MTU in the creating message: the kernel keeps a bridge MTU as set by the
        # user only when it changes it afterwards (update_network does); one given at
        # creation floats with the ports and falls back to 1500 when the last leaves.
        host.add_bridge(name, group=CNM_LINK_GROUP)
        faults.point(f"{resource.key}: bridge created, not yet labelled")
    update_network(ctx, resource)


def update_network(ctx: ApplyContext, resource: Resource) -> None:
    host = ctx.session.rtnl(None)
    link = _claim_link(host, str(resource.get("bridge")), resource.owner)
    if link is None:
        raise KernelError(f"{resource.key}: bridge {resource.get('bridge')} vanished")
    host.set_link(link.index, alias=resource.owner.marker(), mtu=_int(resource, "mtu"), up=True)
    _sync_addresses(host, link.index, _text_values(resource, "addresses"))


def delete_network(ctx: ApplyContext, resource: Resource) -> None:
    host = ctx.session.rtnl(None)
    link = _claim_link(host, str(resource.get("bridge")), resource.owner)
    if link is not None:
        host.delete_link(link.index)


# --- Endpoint (veth pair) ---------------------------------------------------------


def _netns_of_sandbox(ctx: ApplyContext, sandbox: str) -> str:
    key = ResourceKey("Sandbox", sandbox)
    found = ctx.desired.get(key) or ctx.observed.get(key)
    if found is None:
        raise KernelError(f"Sandbox/{sandbox} is not known")
    return str(found.get("netns"))


def _bridge_index(ctx: ApplyContext, network: str) -> int:
    """ifindex of the network's bridge, looked up once per apply."""
    cached = ctx.bridges.get(network)
    if cached is not None:
        return cached
    resource = ctx.desired.get(ResourceKey("Network", network))
    if resource is None:
        raise KernelError(f"Network/{network} is not known")
    link = _claim_link(ctx.session.rtnl(None), str(resource.get("bridge")), resource.owner)
    if link is None:
        raise KernelError(f"{resource.key}: bridge {resource.get('bridge')} is missing")
    ctx.bridges[network] = link.index
    return link.index


def _marker(resource: Resource) -> str:
    """Macvlan children also name their network: there is no bridge to read it from."""
    if resource.get("parent") is not None:
        return endpoint_marker(resource.owner, str(resource.get("network")))
    return resource.owner.marker()


def _owned_child(rtnl: Rtnl, resource: Resource) -> Link | None:
    """The sandbox-side link carrying this endpoint's marker, if any."""
    return next((link for link in rtnl.links() if Owner.parse(link.alias) == resource.owner),
                None)


def create_macvlan_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    namespace = _netns_of_sandbox(ctx, str(resource.get("sandbox")))
    inside = ctx.session.rtnl(namespace)
    child = _owned_child(inside, resource)
    if child is None:
        parent = ctx.session.rtnl(None).link(str(resource.get("parent")))
        if parent is None:
            raise KernelError(f"{resource.key}: parent link {resource.get('parent')} is missing")
        mtu, mac = resource.get("mtu"), resource.get("mac")
        ifname = str(resource.get("ifname"))
        ctx.session.rtnl(None).add_macvlan(
            ifname, parent=parent.index, mode=str(resource.get("mode")), netns_name=namespace,
            group=CNM_LINK_GROUP, mtu=int(str(mtu)) if mtu else None,
            mac=str(mac) if mac else None,
        )
        child = inside.link(ifname)
        if child is None:
            raise KernelError(f"{resource.key}: macvlan {ifname} vanished right after creation")
    _configure_interface(inside, child, resource)


def _wants_ipv6(resource: Resource) -> bool:
    """IPv4-only interfaces get no IPv6 link-local address.

    Otherwise every interface coming up sends DAD, MLD and router solicitations
    that a bridge floods to all its ports: at 1000 endpoints on one bridge that
    made creation quadratic (12 s instead of 5 s for the links alone).
    """
    return resource.get("ipv6") is not None


def _configure_interface(rtnl: Rtnl, link: Link, resource: Resource) -> None:
    """Label, name, MTU, MAC, addresses and default routes of an endpoint's interface."""
    ifname = str(resource.get("ifname"))
    mac, mtu = resource.get("mac"), resource.get("mtu")
    if link.name != ifname:
        rtnl.set_link(link.index, up=False)  # the kernel renames only links that are down
    rtnl.set_link(link.index, alias=_marker(resource), ipv6_link_local=_wants_ipv6(resource),
                  mtu=int(str(mtu)) if mtu is not None else None,
                  name=ifname if link.name != ifname else None,
                  mac=str(mac) if mac and mac != link.mac else None)
    rtnl.set_link(link.index, up=True)
    _sync_addresses(rtnl, link.index, _text_values(resource, "ipv4", "ipv6"))
    for version in (4, 6):
        gateway = resource.get(f"gateway{version}")
        _sync_default_route(rtnl, link.index, version, str(gateway) if gateway else None)


def create_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    """Create the pair with its peer directly inside the sandbox (no move: ~0.5 ms, not 16).

    A fresh pair is configured without reading it back beyond its two
    indexes; a pair that already exists (an interrupted earlier apply) goes
    through the full update.
    """
    if resource.get("parent") is not None:
        create_macvlan_endpoint(ctx, resource)
        return
    host = ctx.session.rtnl(None)
    veth = str(resource.get("veth"))
    if _claim_link(host, veth, resource.owner) is not None:
        update_endpoint(ctx, resource)
        return
    namespace = _netns_of_sandbox(ctx, str(resource.get("sandbox")))
    ifname = str(resource.get("ifname"))
    mac = resource.get("mac")
    host.add_veth(
        veth, mtu=_int(resource, "mtu"), group=CNM_LINK_GROUP, up=False,
        master=_bridge_index(ctx, str(resource.get("network"))),
        peer_name=ifname, peer_netns=namespace, peer_mac=str(mac) if mac else None,
    )
    faults.point(f"{resource.key}: veth pair created, not yet labelled")
    host_link = host.link(veth)
    inside = ctx.session.rtnl(namespace)
    peer = inside.link(ifname)
    if host_link is None or peer is None:
        raise KernelError(f"{resource.key}: veth {veth} vanished right after its creation")
    host.set_link(host_link.index, alias=resource.owner.marker(), up=True,
                  ipv6_link_local=False)
    faults.point(f"{resource.key}: host end labelled, sandbox end not yet")
    inside.set_link(peer.index, alias=resource.owner.marker(), up=True,
                    ipv6_link_local=_wants_ipv6(resource))
    faults.point(f"{resource.key}: both ends labelled, not yet addressed")
    for text in _text_values(resource, "ipv4", "ipv6"):
        inside.add_address(peer.index, text)
    for version in (4, 6):
        gateway = resource.get(f"gateway{version}")
        if gateway:
            inside.replace_default_route(peer.index, str(gateway))


def _peer_of(rtnl: Rtnl, resource: Resource, host_link: Link) -> Link:
    """The sandbox end: by marker, else (an interrupted creation) by the host end's peer index."""
    links = rtnl.links()
    for link in links:
        if Owner.parse(link.alias) == resource.owner:
            return link
    for link in links:
        if link.index == host_link.peer_index and link.group == CNM_LINK_GROUP:
            return link
    raise KernelError(f"{resource.key}: the sandbox end of {host_link.name} is missing")


def update_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    if resource.get("parent") is not None:
        create_macvlan_endpoint(ctx, resource)  # idempotent: configures the existing child
        return
    host = ctx.session.rtnl(None)
    veth = str(resource.get("veth"))
    link = _claim_link(host, veth, resource.owner)
    if link is None:
        raise KernelError(f"{resource.key}: veth {veth} vanished")
    mtu = _int(resource, "mtu")
    host.set_link(link.index, alias=resource.owner.marker(), mtu=mtu, up=True,
                  ipv6_link_local=False, master=_bridge_index(ctx, str(resource.get("network"))))
    inside = ctx.session.rtnl(_netns_of_sandbox(ctx, str(resource.get("sandbox"))))
    _configure_interface(inside, _peer_of(inside, resource, link), resource)


def delete_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    sandbox = resource.get("sandbox")
    if isinstance(sandbox, str):
        home = ctx.observed.get(ResourceKey("Sandbox", sandbox))
        if home is not None and home.get("netns") in ctx.removed_sandboxes:
            return  # removing the netns removes the pair at once (~1 ms instead of ~21 ms)
        if resource.get("parent") is not None and home is not None:
            inside = ctx.session.rtnl(str(home.get("netns")))
            child = _owned_child(inside, resource)
            if child is not None:
                inside.delete_link(child.index)
            return
    host = ctx.session.rtnl(None)
    link = _claim_link(host, str(resource.get("veth")), resource.owner)
    if link is not None:
        host.delete_link(link.index)


STEPS: Mapping[tuple[StepVerb, str], StepFn] = {
    ("create", "Sandbox"): create_sandbox,
    ("update", "Sandbox"): update_sandbox,
    ("delete", "Sandbox"): delete_sandbox,
    ("create", "Network"): create_network,
    ("update", "Network"): update_network,
    ("delete", "Network"): delete_network,
    ("create", "Endpoint"): create_endpoint,
    ("update", "Endpoint"): update_endpoint,
    ("delete", "Endpoint"): delete_endpoint,
}


def run_step(ctx: ApplyContext, step: Step) -> None:
    """Carry out one step; kernel refusals become KernelError naming the object."""
    action = step.action
    resource = action.observed if step.verb == "delete" else action.desired
    if resource is None:
        raise KernelError(f"{action.key}: nothing to {step.verb}")
    try:
        STEPS[(step.verb, action.key.kind)](ctx, resource)
    except OSError as exc:
        raise KernelError(
            f"{action.key}: {step.verb} failed: {exc.strerror or exc}",
            retryable=exc.errno in _RETRYABLE,
        ) from exc

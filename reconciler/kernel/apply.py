"""Apply: one small idempotent step per (verb, kind).

Each step re-reads what it is about to touch, succeeds when its work is
already done, and never changes or deletes a link or namespace that does not
carry this object's marker. Links are created with cnm's link group in the
same netlink message (crash-safe part of the marker), then labelled.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from reconciler.errors import ConflictError, KernelError
from reconciler.kernel import files, netns
from reconciler.kernel.observe import RT_TABLE_MAIN, global_addresses
from reconciler.kernel.rtnl import RtnlReader
from reconciler.kernel.session import KernelSession
from reconciler.naming import CNM_LINK_GROUP
from reconciler.plan import Step, StepVerb
from reconciler.state import Owner, Resource, ResourceKey, State


@dataclass(frozen=True)
class ApplyContext:
    """What a step may consult besides its own resource."""

    session: KernelSession
    desired: State
    observed: State
    removed_sandboxes: frozenset[str]  # netns names this plan deletes
    #: veth host ends whose namespace was removed: the kernel deletes them soon.
    dying: list[tuple[str, Owner]] = field(default_factory=list)
    #: bridge ifindex per network name, filled on first use
    bridges: dict[str, int] = field(default_factory=dict)


StepFn = Callable[[ApplyContext, Resource], None]

#: `lo` is the first link of every network namespace.
_LOOPBACK_INDEX = 1

#: How long to wait for the kernel to destroy a removed namespace's links.
_NETNS_TEARDOWN_GRACE = 2.0


def _link(ipr: IPRoute, name: str) -> Any | None:
    """The link called `name`, asked of the kernel directly (no dump: stays O(1) per call)."""
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


def _claim_link(ipr: IPRoute, name: str, owner: Owner) -> Any | None:
    """The link `name` if it is ours (or a cnm orphan to adopt); None if absent; else refuse."""
    link = _link(ipr, name)
    if link is None:
        return None
    alias = link.get("ifalias")
    if alias == owner.marker() or (not alias and link.get("group") == CNM_LINK_GROUP):
        return link
    raise ConflictError(f"{owner.key}: link {name} exists and is not owned by it ({alias!r})")


def _label(ipr: IPRoute, index: int, owner: Owner) -> None:
    ipr.link("set", index=index, ifalias=owner.marker())


def _sync_addresses(ipr: IPRoute, reader: RtnlReader, index: int, wanted: list[str]) -> None:
    """Make the link's global addresses exactly `wanted` ("addr/prefix")."""
    current = set(global_addresses(reader).get(index, []))
    for text in sorted(current - set(wanted)):
        iface = ipaddress.ip_interface(text)
        ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    for text in sorted(set(wanted) - current):
        _add_address(ipr, index, text)


#: Address flag: skip duplicate address detection, so IPv6 is usable at once.
IFA_F_NODAD = 0x02


def _add_address(ipr: IPRoute, index: int, text: str) -> None:
    """Add "addr/prefix"; IPv6 without DAD, so it is usable (not tentative) at once."""
    iface = ipaddress.ip_interface(text)
    flags = IFA_F_NODAD if iface.version == 6 else 0
    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
             flags=flags)


def _addresses_of(resource: Resource, *attrs: str) -> list[str]:
    values: list[str] = []
    for attr in attrs:
        value = resource.get(attr)
        if isinstance(value, tuple):
            values += [str(v) for v in value]
        elif isinstance(value, str):
            values += [v.strip() for v in value.split(",")]
    return values


def _sync_default_route(
    ipr: IPRoute, reader: RtnlReader | None, index: int, version: int, gateway: str | None
) -> None:
    """Make the default route of this family via link `index` go to `gateway` (or none).

    `reader` None: the link was just created, so there is nothing to read back first.
    """
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    dst = "0.0.0.0/0" if version == 4 else "::/0"
    existing = [] if reader is None else reader.routes()
    for route in existing:
        if (route.dst_len, route.oif, route.table, route.version) == (0, index, RT_TABLE_MAIN,
                                                                       version):
            if gateway is not None and route.gateway == gateway:
                return
            ipr.route("del", dst=dst, family=family, oif=index, gateway=route.gateway)
    if gateway is not None:
        ipr.route("replace", dst=dst, family=family, oif=index, gateway=gateway)


# --- Sandbox -----------------------------------------------------------------


def _label_loopback(owner: Owner) -> Callable[[], None]:
    def setup() -> None:
        with IPRoute() as ipr:
            ipr.link("set", index=_LOOPBACK_INDEX, ifalias=owner.marker(), state="up")

    return setup


def _owned_netns(ctx: ApplyContext, name: str, owner: Owner) -> bool:
    """True if netns `name` exists and is this sandbox's; refuse if it is someone else's."""
    if name not in netns.list_netns():
        return False
    ipr = ctx.session.ipr(name)
    alias = ipr.link("get", index=_LOOPBACK_INDEX)[0].get("ifalias")
    if alias != owner.marker():
        raise ConflictError(f"{owner.key}: netns {name} exists and is not owned by it ({alias!r})")
    return True


def create_sandbox(ctx: ApplyContext, resource: Resource) -> None:
    name = str(resource.get("netns"))
    if not _owned_netns(ctx, name, resource.owner):
        netns.create_netns(name, _label_loopback(resource.owner))
    update_sandbox(ctx, resource)


def update_sandbox(ctx: ApplyContext, resource: Resource) -> None:
    """Relabel and raise `lo` only if needed; rewrite only the files that differ."""
    name = str(resource.get("netns"))
    loopback = next(link for link in ctx.session.reader(name).links()
                    if link.index == _LOOPBACK_INDEX)
    if loopback.alias != resource.owner.marker() or not loopback.up:
        ipr = ctx.session.ipr(name)
        ipr.link("set", index=_LOOPBACK_INDEX, ifalias=resource.owner.marker(), state="up")
    files.write_files(name, dict(resource.attrs))


def delete_sandbox(ctx: ApplyContext, resource: Resource) -> None:
    name = str(resource.get("netns"))
    if _owned_netns(ctx, name, resource.owner):
        ctx.session.forget(name)
        netns.remove_netns(name)
        ctx.dying.extend(
            (str(r.get("veth")), r.owner)
            for r in ctx.observed.of_kind("Endpoint")
            if r.get("sandbox") == resource.key.name and r.get("veth") is not None
        )
    files.remove_files(name)


def settle_teardown(ctx: ApplyContext) -> None:
    """Wait for the veth pairs of removed namespaces to disappear.

    The kernel destroys a namespace in a work queue, in batches: waiting once
    for all of them after the delete phases costs one teardown, not one per
    sandbox. A host end still there after the grace period is deleted.
    """
    host = ctx.session.ipr(None)
    deadline = time.monotonic() + _NETNS_TEARDOWN_GRACE
    for veth, owner in ctx.dying:
        while _link(host, veth) is not None and time.monotonic() < deadline:
            time.sleep(0.002)
        link = _claim_link(host, veth, owner)
        if link is not None:
            host.link("del", index=link["index"])
    ctx.dying.clear()


# --- Network (bridge) ----------------------------------------------------------


def create_network(ctx: ApplyContext, resource: Resource) -> None:
    ipr = ctx.session.ipr(None)
    name = str(resource.get("bridge"))
    if _claim_link(ipr, name, resource.owner) is None:
        ipr.link("add", ifname=name, kind="bridge", group=CNM_LINK_GROUP,
                 mtu=int(str(resource.get("mtu"))))
    update_network(ctx, resource)


def update_network(ctx: ApplyContext, resource: Resource) -> None:
    ipr = ctx.session.ipr(None)
    link = _claim_link(ipr, str(resource.get("bridge")), resource.owner)
    if link is None:
        raise KernelError(f"{resource.key}: bridge {resource.get('bridge')} vanished")
    index = link["index"]
    _label(ipr, index, resource.owner)
    ipr.link("set", index=index, mtu=int(str(resource.get("mtu"))), state="up")
    _sync_addresses(ipr, ctx.session.reader(None), index, _addresses_of(resource, "addresses"))


def delete_network(ctx: ApplyContext, resource: Resource) -> None:
    ipr = ctx.session.ipr(None)
    link = _claim_link(ipr, str(resource.get("bridge")), resource.owner)
    if link is not None:
        ipr.link("del", index=link["index"])


# --- Endpoint (veth pair) ---------------------------------------------------------


def _netns_of_sandbox(ctx: ApplyContext, sandbox: str) -> str:
    found = ctx.desired.get(ResourceKey("Sandbox", sandbox)) or ctx.observed.get(
        ResourceKey("Sandbox", sandbox)
    )
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
    link = _claim_link(ctx.session.ipr(None), str(resource.get("bridge")), resource.owner)
    if link is None:
        raise KernelError(f"{resource.key}: bridge {resource.get('bridge')} is missing")
    ctx.bridges[network] = int(link["index"])
    return ctx.bridges[network]


def create_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    """Create the pair with its peer directly inside the sandbox (no move: ~0.5 ms, not 16).

    A fresh pair is configured without re-reading it; a pair that already
    exists (an interrupted earlier apply) goes through the full update.
    """
    host = ctx.session.ipr(None)
    veth = str(resource.get("veth"))
    if _claim_link(host, veth, resource.owner) is not None:
        update_endpoint(ctx, resource)
        return
    namespace = _netns_of_sandbox(ctx, str(resource.get("sandbox")))
    mtu = int(str(resource.get("mtu")))
    peer: dict[str, object] = {
        "ifname": str(resource.get("ifname")),
        "net_ns_fd": namespace,
        "group": CNM_LINK_GROUP,
        "mtu": mtu,
    }
    if resource.get("mac") is not None:
        peer["address"] = str(resource.get("mac"))
    host.link("add", ifname=veth, kind="veth", group=CNM_LINK_GROUP, mtu=mtu,
              master=_bridge_index(ctx, str(resource.get("network"))), peer=peer)
    host_index = host.link("get", ifname=veth)[0]["index"]
    host.link("set", index=host_index, ifalias=resource.owner.marker(), state="up")
    inside = ctx.session.ipr(namespace)
    peer_index = inside.link("get", ifname=str(resource.get("ifname")))[0]["index"]
    inside.link("set", index=peer_index, ifalias=resource.owner.marker(), state="up")
    for text in _addresses_of(resource, "ipv4", "ipv6"):
        _add_address(inside, peer_index, text)
    for version in (4, 6):
        gateway = resource.get(f"gateway{version}")
        if gateway:
            _sync_default_route(inside, None, peer_index, version, str(gateway))


def _peer_index(reader: RtnlReader, resource: Resource, host_link: Any) -> int:
    """The sandbox end: by marker, else (an interrupted creation) by the host end's peer index."""
    marker = resource.owner.marker()
    links = reader.links()
    for link in links:
        if link.alias == marker:
            return link.index
    for link in links:
        if link.index == host_link.get("link") and link.group == CNM_LINK_GROUP:
            return link.index
    raise KernelError(f"{resource.key}: the sandbox end of {host_link.get('ifname')} is missing")


def update_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    host = ctx.session.ipr(None)
    veth = str(resource.get("veth"))
    link = _claim_link(host, veth, resource.owner)
    if link is None:
        raise KernelError(f"{resource.key}: veth {veth} vanished")
    mtu = int(str(resource.get("mtu")))
    _label(host, link["index"], resource.owner)
    host.link("set", index=link["index"], mtu=mtu,
              master=_bridge_index(ctx, str(resource.get("network"))), state="up")
    namespace = _netns_of_sandbox(ctx, str(resource.get("sandbox")))
    inside, reader = ctx.session.ipr(namespace), ctx.session.reader(namespace)
    index = _peer_index(reader, resource, link)
    _label(inside, index, resource.owner)
    _configure_peer(inside, reader, index, resource, mtu)


def _configure_peer(
    ipr: IPRoute, reader: RtnlReader, index: int, resource: Resource, mtu: int
) -> None:
    current = next(link for link in reader.links() if link.index == index)
    ifname = str(resource.get("ifname"))
    changes: dict[str, object] = {"mtu": mtu}
    if resource.get("mac") is not None:
        changes["address"] = str(resource.get("mac"))
    if current.name != ifname:
        ipr.link("set", index=index, state="down")
        changes["ifname"] = ifname
    ipr.link("set", index=index, **changes)
    ipr.link("set", index=index, state="up")
    _sync_addresses(ipr, reader, index, _addresses_of(resource, "ipv4", "ipv6"))
    for version in (4, 6):
        gateway = resource.get(f"gateway{version}")
        _sync_default_route(ipr, reader, index, version, str(gateway) if gateway else None)


def delete_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    sandbox = resource.get("sandbox")
    if isinstance(sandbox, str):
        owner_sandbox = ctx.observed.get(ResourceKey("Sandbox", sandbox))
        if owner_sandbox is not None and owner_sandbox.get("netns") in ctx.removed_sandboxes:
            return  # removing the netns removes the pair at once (~1 ms instead of ~21 ms)
    host = ctx.session.ipr(None)
    link = _claim_link(host, str(resource.get("veth")), resource.owner)
    if link is not None:
        host.link("del", index=link["index"])


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
    except NetlinkError as exc:
        retry = exc.code in (16, 11)  # EBUSY, EAGAIN
        raise KernelError(f"{action.key}: {step.verb} failed: {exc}", retryable=retry) from exc
    except OSError as exc:
        raise KernelError(f"{action.key}: {step.verb} failed: {exc}") from exc

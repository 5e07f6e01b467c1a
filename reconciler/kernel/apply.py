"""Apply: one small idempotent step per (verb, kind).

Each step re-reads what it is about to touch, succeeds when its work is
already done, and never changes or deletes a link or namespace that does not
carry this object's marker. Links are created with cnm's link group in the
same netlink message (the crash-safe part of the marker), then labelled.

Sandboxes are this module's own; a Network or Endpoint step goes to the driver
that made the resource (`drivers.driver_of`), which calls back into the
driver-independent plumbing here through `ApplyContext` (claiming links,
syncing addresses and routes, configuring an endpoint's interface).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from reconciler import faults
from reconciler.drivers import Driver, StepContext, driver_of
from reconciler.drivers.common import first_text, text_values, wants_ipv6
from reconciler.drivers.kernel_view import LinkInfo
from reconciler.errors import ConflictError, KernelError
from reconciler.kernel import files, netns, resolver
from reconciler.kernel.observe import RT_TABLE_MAIN, global_addresses
from reconciler.kernel.resolver_standby import Standby
from reconciler.kernel.rtnl import Link, Rtnl
from reconciler.kernel.session import KernelSession
from reconciler.naming import CNM_LINK_GROUP
from reconciler.plan import Step, StepVerb
from reconciler.state import Owner, Resource, ResourceKey, State, applied_marker

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
    #: ifindex of each network's host link, by network name, filled by drivers on first use
    network_links: dict[str, int] = field(default_factory=dict)
    #: netns names this plan removes (their endpoints go with them)
    removed_sandboxes: frozenset[str] = frozenset()
    #: the resolver's interpreter, started early when this plan starts the resolver
    resolver_standby: Standby | None = None
    _by_sandbox: dict[str, list[Resource]] = field(default_factory=dict)
    _with_endpoints: frozenset[str] | None = None

    def endpoints_in(self, sandbox: str) -> list[Resource]:
        """Observed endpoints of `sandbox` (indexed on first use: deletes ask per sandbox)."""
        if not self._by_sandbox:
            for resource in self.observed.of_kind("Endpoint"):
                self._by_sandbox.setdefault(str(resource.get("sandbox")), []).append(resource)
        return self._by_sandbox.get(sandbox, [])

    def keep_socket(self, sandbox: Resource, rtnl: Rtnl) -> None:
        """Keep `rtnl`, opened inside `sandbox`'s new namespace, for its endpoints' steps
        (~0.15 ms of setns and socket each, with a hundred namespaces); closed at once
        when no endpoint is desired there, so that idle sockets do not pile up."""
        if self._with_endpoints is None:
            self._with_endpoints = frozenset(
                str(r.get("sandbox")) for r in self.desired.of_kind("Endpoint"))
        if sandbox.key.name in self._with_endpoints:
            self.session.adopt(str(sandbox.get("netns")), rtnl)
        else:
            rtnl.close()

    # --- the plumbing drivers call (drivers.base.StepContext) ---

    def rtnl(self, namespace: str | None) -> Rtnl:
        return self.session.rtnl(namespace)

    def claim_link(self, namespace: str | None, name: str, owner: Owner) -> Link | None:
        return _claim_link(self.session.rtnl(namespace), name, owner)

    def netns_of(self, sandbox: str) -> str:
        key = ResourceKey("Sandbox", sandbox)
        found = self.desired.get(key) or self.observed.get(key)
        if found is None:
            raise KernelError(f"Sandbox/{sandbox} is not known")
        return str(found.get("netns"))

    def sync_addresses(self, namespace: str | None, index: int, wanted: Sequence[str]) -> None:
        _sync_addresses(self.session.rtnl(namespace), index, wanted)

    def configure_interface(
        self, namespace: str, link: LinkInfo, resource: Resource, marker: str
    ) -> None:
        _configure_interface(self.session.rtnl(namespace), link, resource, marker)


StepFn = Callable[[ApplyContext, Resource], None]


def _claim_link(rtnl: Rtnl, name: str, owner: Owner) -> Link | None:
    """The link `name` if it is ours (or a cnm orphan to adopt); None if absent; else refuse."""
    link = rtnl.link(name)
    if link is None:
        return None
    if Owner.parse(link.alias) == owner or (not link.alias and link.group == CNM_LINK_GROUP):
        return link
    raise ConflictError(f"{owner.key}: link {name} exists and is not owned by it ({link.alias!r})")


def _sync_addresses(rtnl: Rtnl, index: int, wanted: Sequence[str]) -> None:
    """Make the link's global addresses exactly `wanted` ("addr/prefix")."""
    current = set(global_addresses(rtnl).get(index, []))
    for text in sorted(current - set(wanted)):
        rtnl.delete_address(index, text)
    for text in sorted(set(wanted) - current):
        rtnl.add_address(index, text)


def _sync_default_route(rtnl: Rtnl, index: int, version: int, gateway: str | None) -> None:
    """Make the main table's default routes of this family via link `index` exactly one,
    to `gateway` (or none): every other one goes, even when the wanted one is there."""
    present = False
    for route in rtnl.routes():
        if (route.version, route.dst_len, route.table, route.oif) != (
            version, 0, RT_TABLE_MAIN, index
        ) or route.gateway is None:
            continue
        if route.gateway == gateway and not present:
            present = True
            continue
        rtnl.delete_default_route(index, route.gateway)
    if gateway is not None and not present:
        rtnl.replace_default_route(index, gateway)


# --- Sandbox -----------------------------------------------------------------


def _label_loopback(marker: str, opened: list[Rtnl]) -> Callable[[], None]:
    """Runs inside the new namespace, before it gets its name; its socket is left open
    in `opened` (see ApplyContext.keep_socket)."""

    def setup() -> None:
        rtnl = Rtnl()
        opened.append(rtnl)
        rtnl.set_link(LOOPBACK_INDEX, alias=marker, up=True)

    return setup


def _owned_netns(ctx: ApplyContext, name: str, owner: Owner) -> bool:
    """True if netns `name` exists and is this sandbox's; refuse if it is someone else's."""
    if not netns.is_netns(netns.netns_path(name)):
        return False
    if _seen_as_ours(ctx, name, owner):
        return True
    loopback = _loopback(ctx.session.rtnl(name))
    if Owner.parse(loopback.alias) != owner:
        raise ConflictError(
            f"{owner.key}: netns {name} exists and is not owned by it ({loopback.alias!r})"
        )
    return True


def _seen_as_ours(ctx: ApplyContext, name: str, owner: Owner) -> bool:
    """True when this apply observed netns `name` labelled as `owner`'s, and it is still
    that very namespace (under the apply lock, nobody else of cnm relabels it)."""
    seen = ctx.session.netns_seen.get(name)
    return seen is not None and seen[0] == netns.identity(name) \
        and Owner.parse(seen[1]) == owner


def _loopback(rtnl: Rtnl) -> Link:
    return next(link for link in rtnl.links() if link.index == LOOPBACK_INDEX)


def create_sandbox(ctx: ApplyContext, resource: Resource) -> None:
    name = str(resource.get("netns"))
    if not _owned_netns(ctx, name, resource.owner):
        opened: list[Rtnl] = []
        try:
            netns.create_netns(name, _label_loopback(applied_marker(resource, ctx.desired),
                                                     opened))
        except BaseException:
            for rtnl in opened:
                rtnl.close()
            raise
        for rtnl in opened:
            ctx.keep_socket(resource, rtnl)
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
    marker = applied_marker(resource, ctx.desired)
    known_good = (
        observed is not None and observed.get("lo_up") is True
        and _seen_as_ours(ctx, name, resource.owner)
    )
    if not known_good:
        rtnl = ctx.session.rtnl(name)
        loopback = _loopback(rtnl)
        if loopback.alias != marker or not loopback.up:
            rtnl.set_link(LOOPBACK_INDEX, alias=marker, up=True)
    elif ctx.session.netns_seen[name][1] != marker:  # a new digest: one request, no dump
        ctx.session.rtnl(name).set_link(LOOPBACK_INDEX, alias=marker, up=True)
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
        for endpoint in ctx.endpoints_in(resource.key.name):
            driver = driver_of(endpoint)
            host_end = driver.host_link(endpoint) if driver is not None else None
            if host_end is not None:  # the kernel deletes it with the namespace
                ctx.dying.append((host_end, endpoint.owner))
    else:  # the namespace is gone already: files a crash left behind
        files.remove_files(name)


def settle_teardown(ctx: ApplyContext) -> None:
    """Wait for the host ends of removed namespaces' endpoints (veth pairs) to disappear.

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


# --- Endpoint interfaces (plumbing the drivers call) -------------------------------


def _configure_interface(rtnl: Rtnl, link: LinkInfo, resource: Resource, marker: str) -> None:
    """Label, name, MTU, MAC, addresses and default routes of an endpoint's interface."""
    ifname = str(resource.get("ifname"))
    mac, mtu = resource.get("mac"), resource.get("mtu")
    if link.name != ifname:
        rtnl.set_link(link.index, up=False)  # the kernel renames only links that are down
    rtnl.set_link(link.index, alias=marker, ipv6_link_local=wants_ipv6(resource),
                  mtu=int(str(mtu)) if mtu is not None else None,
                  name=ifname if link.name != ifname else None,
                  mac=str(mac) if mac and mac != link.mac else None)
    rtnl.set_link(link.index, up=True)
    _sync_addresses(rtnl, link.index, text_values(resource, "ipv4", "ipv6"))
    for version in (4, 6):
        _sync_default_route(rtnl, link.index, version, first_text(resource, f"gateway{version}"))


# --- Network and Endpoint: the driver's steps ----------------------------------------


DriverStep = Callable[[Driver], Callable[[StepContext, Resource], None]]


def _by_driver(select: DriverStep) -> StepFn:
    """The step that hands a Network or Endpoint resource to `select(its driver)`."""

    def step(ctx: ApplyContext, resource: Resource) -> None:
        driver = driver_of(resource)
        if driver is None:
            raise KernelError(f"{resource.key}: no driver makes a {resource.key.kind}")
        select(driver)(ctx, resource)

    return step


_delete_endpoint = _by_driver(lambda d: d.delete_endpoint)


def delete_endpoint(ctx: ApplyContext, resource: Resource) -> None:
    sandbox = resource.get("sandbox")
    if isinstance(sandbox, str):
        home = ctx.observed.get(ResourceKey("Sandbox", sandbox))
        if home is not None and home.get("netns") in ctx.removed_sandboxes:
            return  # removing the netns removes the pair at once (~1 ms instead of ~21 ms)
    _delete_endpoint(ctx, resource)


def ensure_resolver(ctx: ApplyContext, resource: Resource) -> None:
    """Write the resolver's configuration and start or reload it (kernel/resolver.py)."""
    resolver.ensure(resource.key.name, dict(resource.attrs), ctx.resolver_standby)


def stop_resolver(ctx: ApplyContext, resource: Resource) -> None:
    resolver.stop(resource.key.name)


STEPS: Mapping[tuple[StepVerb, str], StepFn] = {
    ("create", "Sandbox"): create_sandbox,
    ("update", "Sandbox"): update_sandbox,
    ("delete", "Sandbox"): delete_sandbox,
    ("create", "Network"): _by_driver(lambda d: d.create_network),
    ("update", "Network"): _by_driver(lambda d: d.update_network),
    ("delete", "Network"): _by_driver(lambda d: d.delete_network),
    ("create", "Endpoint"): _by_driver(lambda d: d.create_endpoint),
    ("update", "Endpoint"): _by_driver(lambda d: d.update_endpoint),
    ("delete", "Endpoint"): delete_endpoint,
    ("create", "Resolver"): ensure_resolver,
    ("update", "Resolver"): ensure_resolver,
    ("delete", "Resolver"): stop_resolver,
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

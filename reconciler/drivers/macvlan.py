"""The macvlan driver: each endpoint is a macvlan child of the host link `spec.parent`,
created directly inside its sandbox. The network itself has no kernel object: the
children's markers name it (there is no bridge to read it from), and export
rebuilds it from its endpoints.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.drivers.base import Driver, EndpointContext, FieldProblem
from reconciler.drivers.common import (
    addresses,
    gateways,
    interface_attrs,
    interface_summary,
    text_values,
)
from reconciler.drivers.kernel_view import LinkInfo, PeerEnd, StepContext, owned_link
from reconciler.drivers.names import EXCLUSIVE_OPTIONS, MACVLAN_MODES
from reconciler.errors import KernelError
from reconciler.naming import CNM_LINK_GROUP
from reconciler.state import (
    AttrValue,
    Resource,
    ResourceKey,
    State,
    applied_marker,
    marker_network,
)

if TYPE_CHECKING:
    from reconciler.model import Endpoint, Network

#: macvlan's own default (and libnetwork's): children of one parent reach each other.
DEFAULT_MODE = MACVLAN_MODES[0]


class MacvlanDriver:
    name = "macvlan"
    has_interfaces = True
    shares_host_namespace = False
    serves_names = False
    default_pools = False
    publishes_ports = False
    options = frozenset({"mtu", "parent", "mode"})
    exclusive_options = EXCLUSIVE_OPTIONS["macvlan"]
    interface_options = ("parent",)
    replacement_fields: Mapping[str, frozenset[str]] = {
        "Endpoint": frozenset({"parent", "mode"}),
    }
    network_link_kind = None
    host_end_kind = None
    interface_kind = "macvlan"

    # --- options and validation ---

    def check_network(self, network: Network) -> list[FieldProblem]:
        if network.spec.parent is None:
            return [("spec.parent", "a macvlan network needs spec.parent, the host "
                                    "interface its endpoints hang off (e.g. eth1)")]
        return []

    def check_endpoint(self, endpoint: Endpoint, network: Network) -> list[FieldProblem]:
        if not endpoint.spec.ports:
            return []
        return [("spec.ports", f"{network.key} uses the {self.name} driver: its endpoints are "
                               "reached on their own addresses, nothing is published (only "
                               "bridge networks publish ports); remove spec.ports")]

    def network_link_name(self, network: Network) -> str | None:
        return None

    # --- desired resources ---

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        return None

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        spec, network = ctx.endpoint.spec, ctx.network.spec
        attrs: dict[str, AttrValue] = {
            "network": ctx.network.metadata.name,
            "sandbox": ctx.sandbox.metadata.name,
            "parent": network.parent,
            "mode": network.mode or DEFAULT_MODE,
            "ifname": ctx.ifname,
            **addresses(ctx),
            **gateways(ctx),
            "up": True,
        }
        if network.mtu is not None:  # else the child keeps its parent's MTU
            attrs["mtu"] = network.mtu
        if spec.mac_address is not None:
            attrs["mac"] = spec.mac_address
        return attrs

    # --- resources ---

    def owns(self, resource: Resource) -> bool:
        if resource.key.kind == "Network":  # only as export rebuilds it
            return resource.get("driver") == self.name
        return resource.key.kind == "Endpoint" and "parent" in resource.attrs

    def host_link(self, resource: Resource) -> str | None:
        return None  # the children live in the sandboxes

    def describe(self, resource: Resource) -> str:
        return interface_summary(resource, f"macvlan {resource.get('parent')}")

    def kernel_problems(self, resource: Resource, observed: State) -> list[str]:
        parent = resource.get("parent")
        if resource.key.kind != "Endpoint" or not isinstance(parent, str) \
                or f"link:{parent}" in observed.occupied:
            return []
        return [f"{resource.key}: Network/{resource.get('network')}: spec.parent: host link "
                f"{parent} does not exist (a macvlan network needs an existing parent)"]

    def restorable(self, resource: Resource) -> bool:
        # Rollback has never re-made macvlan children (it needs a veth to re-make an
        # endpoint); kept as it was, see the report of issue 12.
        return False

    # --- observation ---

    def observe_network(self, link: LinkInfo, addresses: Sequence[str]) -> dict[str, AttrValue]:
        raise NotImplementedError("a macvlan network has no link")

    def observe_endpoint(
        self, host: LinkInfo | None, peer: PeerEnd | None,
        networks_by_link: Mapping[int, str], host_link_names: Mapping[int, str],
    ) -> dict[str, AttrValue]:
        """A macvlan child: its network is in its marker, its parent is a host link."""
        assert peer is not None  # chosen by its interface, so there is one
        parent = peer.link.peer_index
        return {
            "network": marker_network(peer.link.alias),
            "sandbox": peer.sandbox,
            "parent": host_link_names.get(parent) if parent is not None else None,
            "mode": peer.link.macvlan_mode,
            "up": peer.link.up,
            "mtu": peer.link.mtu,
            **interface_attrs(peer),
        }

    def is_leftover(self, link: LinkInfo, masters: set[int], addressed: set[int]) -> bool:
        return False  # made inside the sandbox: nothing in the host namespace

    # --- apply steps ---

    def create_network(self, ctx: StepContext, resource: Resource) -> None:
        """No kernel object, so no resource, so no step ever reaches here."""

    update_network = delete_network = create_network

    def create_endpoint(self, ctx: StepContext, resource: Resource) -> None:
        """Create the child inside its sandbox if it is not there, then configure it
        (idempotent: an update is the same step)."""
        namespace = ctx.netns_of(str(resource.get("sandbox")))
        child = owned_link(ctx.rtnl(namespace), resource.owner)
        if child is None:
            parent = ctx.rtnl(None).link(str(resource.get("parent")))
            if parent is None:
                raise KernelError(
                    f"{resource.key}: parent link {resource.get('parent')} is missing")
            mtu, mac = resource.get("mtu"), resource.get("mac")
            ifname = str(resource.get("ifname"))
            ctx.rtnl(None).add_macvlan(
                ifname, parent=parent.index, mode=str(resource.get("mode")),
                netns_name=namespace, group=CNM_LINK_GROUP, mtu=int(str(mtu)) if mtu else None,
                mac=str(mac) if mac else None,
            )
            child = ctx.rtnl(namespace).link(ifname)
            if child is None:
                raise KernelError(f"{resource.key}: macvlan {ifname} vanished right after creation")
        marker = applied_marker(resource, ctx.desired, str(resource.get("network")))
        ctx.configure_interface(namespace, child, resource, marker)

    update_endpoint = create_endpoint

    def delete_endpoint(self, ctx: StepContext, resource: Resource) -> None:
        home = ctx.observed.get(ResourceKey("Sandbox", str(resource.get("sandbox"))))
        if home is None:
            return  # no sandbox, no child
        inside = ctx.rtnl(str(home.get("netns")))
        child = owned_link(inside, resource.owner)
        if child is not None:
            inside.delete_link(child.index)

    # --- export ---

    def rebuild_networks(self, observed: State) -> dict[str, Resource]:
        """Each network from its endpoints: parent, mode, the subnets of their
        addresses, the gateway of their routes."""
        members: dict[str, list[Resource]] = defaultdict(list)
        for endpoint in observed.of_kind("Endpoint"):
            if self.owns(endpoint) and endpoint.get("parent") is not None \
                    and endpoint.get("network") is not None:
                members[str(endpoint.get("network"))].append(endpoint)
        networks: dict[str, Resource] = {}
        for name, endpoints in sorted(members.items()):
            first = endpoints[0]
            subnets = sorted({str(ipaddress.ip_interface(a).network)
                              for e in endpoints for a in text_values(e, "ipv4", "ipv6")})
            held = []
            for subnet in subnets:
                network = ipaddress.ip_network(subnet)
                attr = "gateway4" if network.version == 4 else "gateway6"
                gateway = next((g for e in endpoints for g in text_values(e, attr)), None)
                if gateway is not None:
                    held.append(f"{gateway}/{network.prefixlen}")
            networks[name] = Resource(
                ResourceKey("Network", name), observed.set_name,
                {"driver": self.name, "parent": first.get("parent"), "mode": first.get("mode"),
                 "subnets": tuple(subnets), "addresses": tuple(held)},
            )
        return networks

    def network_spec(self, resource: Resource, ipam: list[dict[str, Any]]) -> dict[str, Any]:
        spec: dict[str, Any] = {"driver": self.name, "parent": resource.get("parent")}
        if resource.get("mode") not in (None, DEFAULT_MODE):
            spec["mode"] = resource.get("mode")
        if ipam:
            spec["ipam"] = ipam
        return spec


DRIVER: Driver = MacvlanDriver()

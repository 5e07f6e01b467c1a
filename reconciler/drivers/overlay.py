"""The overlay driver: one layer-2 network across hosts over VXLAN (libnetwork's overlay).

On each host that realizes a sandbox joined to the network: a bridge and a
VXLAN device attached to it (the network's VNI, local = this host's advertise
address, UDP 4789, learning off, ARP answered from its neighbour table), both
labelled with the network's marker. Endpoints are veth pairs on the bridge as
with the bridge driver (whose endpoint steps serve them: the resource has a
`veth`), but without a default route: an overlay network leads nowhere else.

What no kernel knows comes from the cluster store, through the fleet planner
(reconciler/fleet/): the VNI, and per remote endpoint a forwarding-database
entry (its MAC -> its host's VTEP) and a permanent neighbour entry (its IP ->
its MAC), plus one all-zero flood entry per remote VTEP. They are attributes
of the Network resource (`fdb`, `neighbours`: sorted texts), so a hand-deleted
entry is drift like any other and the network's update step puts it back.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler import faults
from reconciler.drivers.base import Driver, EndpointContext, FieldProblem
from reconciler.drivers.common import (
    FLOOD_MAC,
    addresses,
    int_attr,
    interface_summary,
    text_values,
)
from reconciler.drivers.kernel_view import LinkInfo, PeerEnd, StepContext
from reconciler.drivers.names import EXCLUSIVE_OPTIONS
from reconciler.errors import KernelError
from reconciler.naming import CNM_LINK_GROUP, IFNAMSIZ
from reconciler.state import AttrValue, Resource, State

if TYPE_CHECKING:
    from reconciler.model import Endpoint, Network

#: IANA's VXLAN port (Linux's own default, 8472, predates it)
VXLAN_PORT = 4789
#: What a network without `spec.mtu` gets when the underlay's MTU is not known
FALLBACK_MTU = 1450


def vxlan_name(network: str) -> str:
    """`vx-<name>` when that fits in 15 bytes, else `vx-` and 12 hex of a hash."""
    candidate = f"vx-{network}"
    if len(candidate) <= IFNAMSIZ:
        return candidate
    return "vx-" + hashlib.sha256(f"vxlan\0{network}".encode()).hexdigest()[:12]


def endpoint_mac(ipv4: str | None, ipv6: str | None, name: str) -> str:
    """A stable MAC every host can compute: Docker's overlay form `02:42:` + the IPv4
    address; IPv6-only endpoints take the low 32 bits of their address."""
    if ipv4 is not None:
        raw = ipaddress.IPv4Address(ipv4.split("/")[0]).packed
    elif ipv6 is not None:
        raw = ipaddress.IPv6Address(ipv6.split("/")[0]).packed[-4:]
    else:
        raw = hashlib.sha256(name.encode()).digest()[:4]
    return "02:42:" + raw.hex(":")


class OverlayDriver:
    name = "overlay"
    has_interfaces = True
    shares_host_namespace = False
    default_pools = False  # the default pools are one host's view: a fleet needs spec.ipam
    publishes_ports = False
    # cnm's resolver is one host's view and listens on a gateway address; an overlay
    # bridge holds none (the gateway is reserved fleet-wide), so peers across hosts are
    # not named by it (docs/fleet.md).
    serves_names = False
    #: its networks span hosts: addresses, VNI and peers come from the cluster store
    cluster_scoped = True
    options = frozenset({"mtu"})
    exclusive_options = EXCLUSIVE_OPTIONS["overlay"]
    interface_options = ()
    replacement_fields: Mapping[str, frozenset[str]] = {
        "Network": frozenset({"vxlan", "vni", "local", "port"}),
    }
    network_link_kind = "vxlan"
    host_end_kind = None  # veth ends: the bridge driver's (it owns endpoints with a `veth`)
    interface_kind = None

    # --- options and validation ---

    def check_network(self, network: Network) -> list[FieldProblem]:
        if network.spec.ipam:
            return []
        return [("spec.ipam", "an overlay network needs spec.ipam: one cluster-wide pool "
                              "(default pools are one host's choice)")]

    def check_endpoint(self, endpoint: Endpoint, network: Network) -> list[FieldProblem]:
        if not endpoint.spec.ports:
            return []
        return [("spec.ports", f"{network.key} is an overlay network, which publishes no "
                               "ports; join the sandbox to a bridge network for that")]

    def network_link_name(self, network: Network) -> str | None:
        return network.bridge_name

    # --- desired resources (the fleet planner adds `local`, `fdb` and `neighbours`) ---

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        mtu = network.spec.mtu if network.spec.mtu is not None else FALLBACK_MTU
        return {
            "driver": self.name,
            "bridge": network.bridge_name,
            "vxlan": vxlan_name(network.metadata.name),
            "vni": network.spec.vni,
            "port": VXLAN_PORT,
            "learning": False,
            "mtu": mtu,
            "vxlan.mtu": mtu,
            "addresses": (),
            "up": True,
            "vxlan.up": True,
        }

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        spec = ctx.endpoint.spec
        held = addresses(ctx)
        ipv4, ipv6 = ctx.assignment.ipv4, ctx.assignment.ipv6
        mac = spec.mac_address or endpoint_mac(
            str(ipv4) if ipv4 else None, str(ipv6) if ipv6 else None, ctx.endpoint.metadata.name)
        return {
            "network": ctx.network.metadata.name,
            "sandbox": ctx.sandbox.metadata.name,
            "veth": ctx.veth,
            "ifname": ctx.ifname,
            "mtu": ctx.network.spec.mtu if ctx.network.spec.mtu is not None else FALLBACK_MTU,
            **held,
            "gateway4": None,  # no default route through an overlay network
            "gateway6": None,
            "up": True,
            "mac": mac,
        }

    # --- resources ---

    def owns(self, resource: Resource) -> bool:
        return resource.key.kind == "Network" and resource.get("driver") == self.name

    def host_link(self, resource: Resource) -> str | None:
        name = resource.get("bridge")
        return name if isinstance(name, str) else None

    def describe(self, resource: Resource) -> str:
        if resource.key.kind != "Network":
            return interface_summary(resource, f"veth {resource.get('veth')}")
        fdb = text_values(resource, "fdb")
        peers = sum(1 for entry in fdb if not entry.startswith(FLOOD_MAC))
        return (f"bridge {resource.get('bridge')} + vxlan {resource.get('vxlan')} "
                f"vni {resource.get('vni')} local {resource.get('local')}  "
                f"{len(fdb) - peers} remote VTEPs, {peers} remote endpoints")

    def kernel_problems(self, resource: Resource, observed: State) -> list[str]:
        return []

    def restorable(self, resource: Resource) -> bool:
        return all(resource.get(a) is not None for a in ("bridge", "vxlan", "vni", "local")) \
            and isinstance(resource.get("mtu"), int)

    # --- observation: the VXLAN link; kernel/observe.py merges the bridge's view and the
    # entries read from the device into the same resource ---

    def observe_network(self, link: LinkInfo, addresses: Sequence[str]) -> dict[str, AttrValue]:
        info = link.vxlan
        return {
            "driver": self.name,
            "vxlan": link.name,
            "vni": info.vni if info is not None else None,
            "local": info.local if info is not None else None,
            "port": info.port if info is not None else None,
            "learning": info.learning if info is not None else None,
            "vxlan.mtu": link.mtu,
            "vxlan.up": link.up,
        }

    def observe_endpoint(
        self, host: LinkInfo | None, peer: PeerEnd | None,
        networks_by_link: Mapping[int, str], host_link_names: Mapping[int, str],
    ) -> dict[str, AttrValue]:
        raise NotImplementedError("overlay endpoints are veth pairs: the bridge driver's")

    def is_leftover(self, link: LinkInfo, masters: set[int], addressed: set[int]) -> bool:
        """A VXLAN device `create_network` made but had not labelled yet."""
        return link.kind == self.network_link_kind

    # --- apply steps: the network ---

    def create_network(self, ctx: StepContext, resource: Resource) -> None:
        host = ctx.rtnl(None)
        bridge = str(resource.get("bridge"))
        if ctx.claim_link(None, bridge, resource.owner) is None:
            host.add_bridge(bridge, group=CNM_LINK_GROUP)
            faults.point(f"{resource.key}: bridge created, not yet labelled")
        vxlan = str(resource.get("vxlan"))
        if ctx.claim_link(None, vxlan, resource.owner) is None:
            host.add_vxlan(vxlan, vni=int_attr(resource, "vni"), local=str(resource.get("local")),
                           port=int_attr(resource, "port"), group=CNM_LINK_GROUP,
                           mtu=int_attr(resource, "mtu"))
            faults.point(f"{resource.key}: vxlan created, not yet labelled")
        self.update_network(ctx, resource)

    def update_network(self, ctx: StepContext, resource: Resource) -> None:
        host = ctx.rtnl(None)
        bridge = ctx.claim_link(None, str(resource.get("bridge")), resource.owner)
        vxlan = ctx.claim_link(None, str(resource.get("vxlan")), resource.owner)
        if bridge is None or vxlan is None:
            raise KernelError(f"{resource.key}: bridge {resource.get('bridge')} or vxlan "
                              f"{resource.get('vxlan')} vanished")
        marker, mtu = resource.owner.marker(), int_attr(resource, "mtu")
        host.set_link(bridge.index, alias=marker, mtu=mtu, up=True)
        ctx.sync_addresses(None, bridge.index, [])
        host.set_link(vxlan.index, alias=marker, mtu=mtu, master=bridge.index, up=True,
                      ipv6_link_local=False)
        _sync_entries(ctx, vxlan.index, resource)

    def delete_network(self, ctx: StepContext, resource: Resource) -> None:
        for attr in ("vxlan", "bridge"):
            link = ctx.claim_link(None, str(resource.get(attr)), resource.owner)
            if link is not None:
                ctx.rtnl(None).delete_link(link.index)

    # Endpoints are the bridge driver's veth pairs (`driver_of` gives it any endpoint with a
    # `veth`), so these steps are never reached.
    def create_endpoint(self, ctx: StepContext, resource: Resource) -> None:
        raise NotImplementedError

    update_endpoint = delete_endpoint = create_endpoint

    # --- export ---

    def rebuild_networks(self, observed: State) -> dict[str, Resource]:
        return {}

    def network_spec(self, resource: Resource, ipam: list[dict[str, Any]]) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        vni = resource.get("vni")
        if isinstance(vni, int):
            spec["vni"] = vni
        if ipam:
            spec["ipam"] = ipam
        return spec


def _sync_entries(ctx: StepContext, index: int, resource: Resource) -> None:
    """Make the device's forwarding and neighbour entries exactly the resource's: the
    differences in one batch of requests (hundreds of remote endpoints, a few datagrams)."""
    rtnl = ctx.rtnl(None)
    wanted_fdb = {_pair(text) for text in text_values(resource, "fdb")}
    present_fdb = set(rtnl.fdb_entries(index))
    wanted = {_pair(text) for text in text_values(resource, "neighbours")}
    present = set(rtnl.neighbour_entries(index))
    if wanted_fdb != present_fdb or wanted != present:
        rtnl.change_entries(index, fdb_gone=sorted(present_fdb - wanted_fdb),
                            fdb_new=sorted(wanted_fdb - present_fdb),
                            neighbours_gone=sorted(present - wanted),
                            neighbours_new=sorted(wanted - present))


def _pair(text: str) -> tuple[str, str]:
    first, _, second = text.partition(" ")
    return first, second


DRIVER: Driver = OverlayDriver()

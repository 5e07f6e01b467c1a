"""The bridge driver: a Linux bridge per network, a veth pair per endpoint."""

from __future__ import annotations

from reconciler import firewall
from reconciler.drivers.base import EndpointContext
from reconciler.model import Network
from reconciler.state import AttrValue

DEFAULT_MTU = 1500


def network_mtu(network: Network) -> int:
    """The MTU of the bridge and of every veth on it (explicit so it never floats)."""
    return network.spec.mtu if network.spec.mtu is not None else DEFAULT_MTU


class BridgeDriver:
    """libnetwork's bridge driver, expressed as data."""

    name = "bridge"

    def network_attrs(self, network: Network) -> dict[str, AttrValue]:
        pools = network.spec.ipam
        return {
            "driver": "bridge",
            "bridge": network.bridge_name,
            "mtu": network_mtu(network),
            "subnets": tuple(sorted(str(p.subnet) for p in pools)),
            "addresses": tuple(
                sorted(f"{p.effective_gateway()}/{p.subnet.prefixlen}" for p in pools)
            ),
            "up": True,
            **firewall.network_attrs(network),
        }

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue]:
        spec = ctx.endpoint.spec
        pools = ctx.network.spec.ipam
        gateway4 = next((p.effective_gateway() for p in pools if p.subnet.version == 4), None)
        gateway6 = next((p.effective_gateway() for p in pools if p.subnet.version == 6), None)
        ipv4, ipv6 = ctx.assignment.ipv4, ctx.assignment.ipv6
        attrs: dict[str, AttrValue] = {
            "network": ctx.network.metadata.name,
            "sandbox": ctx.sandbox.metadata.name,
            "veth": ctx.veth,
            "ifname": spec.ifname,
            "mtu": network_mtu(ctx.network),
            "ipv4": str(ipv4) if ipv4 else None,
            "ipv6": str(ipv6) if ipv6 else None,
            "gateway4": str(gateway4) if spec.gateway and gateway4 and ipv4 else None,
            "gateway6": str(gateway6) if spec.gateway and gateway6 and ipv6 else None,
            "up": True,
            **firewall.endpoint_attrs(spec.ports),
        }
        if spec.mac_address is not None:
            attrs["mac"] = spec.mac_address
        return attrs

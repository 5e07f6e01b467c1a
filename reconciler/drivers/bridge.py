"""The bridge driver: a Linux bridge per network, a veth pair per endpoint."""

from __future__ import annotations

from reconciler import firewall
from reconciler.drivers.base import EndpointContext, addresses, gateways
from reconciler.model import Network
from reconciler.state import AttrValue

DEFAULT_MTU = 1500


def network_mtu(network: Network) -> int:
    """The MTU of the bridge and of every veth on it (explicit so it never floats)."""
    return network.spec.mtu if network.spec.mtu is not None else DEFAULT_MTU


class BridgeDriver:
    """libnetwork's bridge driver, expressed as data."""

    name = "bridge"
    has_interfaces = True
    shares_host_namespace = False

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
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

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        spec = ctx.endpoint.spec
        attrs: dict[str, AttrValue] = {
            "network": ctx.network.metadata.name,
            "sandbox": ctx.sandbox.metadata.name,
            "veth": ctx.veth,
            "ifname": spec.ifname,
            "mtu": network_mtu(ctx.network),
            **addresses(ctx),
            **gateways(ctx),
            "up": True,
            **firewall.endpoint_attrs(spec.ports),
        }
        if spec.mac_address is not None:
            attrs["mac"] = spec.mac_address
        return attrs

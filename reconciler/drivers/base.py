"""The driver interface: a network driver's whole slice behind one protocol.

A driver says which manifest options it takes and checks them; turns a
Network and its joined endpoints into resources (desired state); turns the
kernel links it made back into the same resources (observation); creates,
updates and deletes its kernel objects (apply steps); and rebuilds manifests
from what it observed (export). Everything else in cnm reaches a driver through
the registry (`reconciler.drivers`), never by its name.

Drivers stay pure: the kernel layer hands their apply steps a `StepContext`
and their observation the links it read, both described here as protocols,
so this package imports nothing from `reconciler.kernel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.state import AttrValue, Owner, Resource, State, external

if TYPE_CHECKING:  # the drivers import the model; the model validates through them
    from reconciler.ipam import Assignment
    from reconciler.model import Endpoint, Network, Sandbox

#: (dotted field path, message) of one manifest problem a driver finds.
FieldProblem = tuple[str, str]

#: What `Endpoint.join` returns as the sandbox key of a sandbox that is the host namespace.
HOST_SANDBOX_KEY = "/proc/1/ns/net"


@dataclass(frozen=True)
class EndpointContext:
    """Everything a driver needs to describe one joined endpoint."""

    endpoint: Endpoint
    network: Network
    sandbox: Sandbox
    assignment: Assignment
    veth: str


# --- what the kernel layer hands a driver ---------------------------------------


class LinkInfo(Protocol):
    """A link as observation read it (kernel/rtnl.Link)."""

    @property
    def index(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def alias(self) -> str | None: ...
    @property
    def group(self) -> int: ...
    @property
    def mtu(self) -> int: ...
    @property
    def up(self) -> bool: ...
    @property
    def mac(self) -> str | None: ...
    @property
    def master(self) -> int | None: ...
    @property
    def peer_index(self) -> int | None: ...
    @property
    def macvlan_mode(self) -> str | None: ...


class PeerEnd(Protocol):
    """An endpoint's link inside its sandbox, with what observation read about it."""

    @property
    def sandbox(self) -> str: ...
    @property
    def link(self) -> LinkInfo: ...
    @property
    def addresses(self) -> Sequence[str]: ...
    @property
    def gateways(self) -> Mapping[int, Sequence[str]]: ...


class Netlink(Protocol):
    """The rtnetlink requests apply steps make in one namespace (kernel/rtnl.Rtnl)."""

    def links(self) -> Sequence[LinkInfo]: ...
    def link(self, name: str) -> LinkInfo | None: ...
    def add_bridge(self, name: str, *, group: int) -> None: ...
    def add_veth(
        self, name: str, *, mtu: int, group: int, master: int, up: bool,
        peer_name: str, peer_netns: str, peer_mac: str | None,
    ) -> None: ...
    def add_macvlan(
        self, name: str, *, parent: int, mode: str, netns_name: str, group: int,
        mtu: int | None, mac: str | None,
    ) -> None: ...
    def set_link(
        self, index: int, *, up: bool | None = None, name: str | None = None,
        mtu: int | None = None, master: int | None = None, mac: str | None = None,
        alias: str | None = None, ipv6_link_local: bool | None = None,
    ) -> None: ...
    def delete_link(self, index: int) -> None: ...
    def add_address(self, index: int, text: str) -> None: ...
    def replace_default_route(self, index: int, gateway: str) -> None: ...


class StepContext(Protocol):
    """The driver-independent plumbing kernel/apply.py offers a driver's apply steps.

    A namespace is a netns name, or None for the host namespace.
    """

    @property
    def desired(self) -> State: ...
    @property
    def observed(self) -> State: ...
    @property
    def network_links(self) -> dict[str, int]:
        """ifindex of each network's host link, filled by the driver on first use."""
        ...

    def rtnl(self, namespace: str | None) -> Netlink: ...
    def claim_link(self, namespace: str | None, name: str, owner: Owner) -> LinkInfo | None:
        """Link `name` if it is `owner`'s (or a cnm orphan to adopt); None if absent;
        ConflictError if someone else's."""
        ...
    def netns_of(self, sandbox: str) -> str:
        """The netns name of Sandbox `sandbox` (desired, else observed)."""
        ...
    def sync_addresses(self, namespace: str | None, index: int, wanted: Sequence[str]) -> None:
        """Make the link's global addresses exactly `wanted` ("address/prefix")."""
        ...
    def configure_interface(
        self, namespace: str, link: LinkInfo, resource: Resource, marker: str
    ) -> None:
        """Label (`marker`), name, MTU, MAC, addresses and default routes of an endpoint's
        interface in its sandbox, as `resource` says."""
        ...


# --- the protocol ------------------------------------------------------------------


class Driver(Protocol):
    """A network driver: everything cnm knows about one kind of network."""

    # Constants a driver class sets as plain class attributes (read-only here, so
    # that a class attribute of a narrower type, `"bridge"` or `()`, fits).
    @property
    def name(self) -> str: ...
    #: endpoints get an interface, addressed from the network's pools
    @property
    def has_interfaces(self) -> bool: ...
    #: a sandbox joined through this driver is the host namespace itself
    @property
    def shares_host_namespace(self) -> bool: ...
    #: a network without `spec.ipam` gets a subnet from the default address pools
    @property
    def default_pools(self) -> bool: ...
    #: endpoints may publish ports (the firewall's DNAT rules)
    @property
    def publishes_ports(self) -> bool: ...
    #: NetworkSpec fields `Controller.configure_network_driver` takes as defaults
    @property
    def options(self) -> frozenset[str]: ...
    #: NetworkSpec fields only this driver's networks may set
    @property
    def exclusive_options(self) -> tuple[str, ...]: ...
    #: NetworkSpec fields naming a host interface: checked as interface names when set
    @property
    def interface_options(self) -> tuple[str, ...]: ...
    #: Resource attributes whose change forces a replacement, by kind
    @property
    def replacement_fields(self) -> Mapping[str, frozenset[str]]: ...
    #: kind of the network's link in the host namespace, if it has one
    @property
    def network_link_kind(self) -> str | None: ...
    #: kind of an endpoint's end in the host namespace, if it has one
    @property
    def host_end_kind(self) -> str | None: ...
    #: kind of an endpoint's interface in its sandbox, if it has one
    @property
    def interface_kind(self) -> str | None: ...

    # options and validation
    def check_network(self, network: Network) -> list[FieldProblem]:
        """Problems of a network of this driver, alone."""
        ...

    def check_endpoint(self, endpoint: Endpoint, network: Network) -> list[FieldProblem]:
        """Problems of an endpoint on a network of this driver."""
        ...

    def network_link_name(self, network: Network) -> str | None:
        """The host link the network will be (two networks cannot share one)."""
        ...

    # desired resources
    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        """The Network resource as the kernel will show it; None: no kernel object."""
        ...

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        """The Endpoint resource of a joined endpoint; None: no kernel object."""
        ...

    # resources, desired or observed
    def owns(self, resource: Resource) -> bool:
        """True if this driver made (or would make) `resource`'s kernel object."""
        ...

    def host_link(self, resource: Resource) -> str | None:
        """The name of the link in the host namespace `resource` is, if any."""
        ...

    def describe(self, resource: Resource) -> str:
        """The resource's kernel objects in a few words (plan create and delete lines)."""
        ...

    def kernel_problems(self, resource: Resource, observed: State) -> list[str]:
        """What in the observed kernel prevents creating `resource` (planning refuses)."""
        ...

    def restorable(self, resource: Resource) -> bool:
        """True if an observed `resource` can be made again as it is (rollback)."""
        ...

    # observation
    def observe_network(self, link: LinkInfo, addresses: Sequence[str]) -> dict[str, AttrValue]:
        """The Network resource of an owned host link of kind `network_link_kind`."""
        ...

    def observe_endpoint(
        self, host: LinkInfo | None, peer: PeerEnd | None,
        networks_by_link: Mapping[int, str], host_link_names: Mapping[int, str],
    ) -> dict[str, AttrValue]:
        """The Endpoint resource of an endpoint's owned ends (at least one is given).
        `networks_by_link` maps the ifindex of each network's host link to its name."""
        ...

    def is_leftover(self, link: LinkInfo, masters: set[int], addressed: set[int]) -> bool:
        """True for a host link of cnm's group with no label that this driver's
        interrupted creation left (`masters`: links with ports; `addressed`: with
        addresses)."""
        ...

    # apply steps: small, idempotent, never touching what `resource.owner` does not own
    def create_network(self, ctx: StepContext, resource: Resource) -> None: ...
    def update_network(self, ctx: StepContext, resource: Resource) -> None: ...
    def delete_network(self, ctx: StepContext, resource: Resource) -> None: ...
    def create_endpoint(self, ctx: StepContext, resource: Resource) -> None: ...
    def update_endpoint(self, ctx: StepContext, resource: Resource) -> None: ...
    def delete_endpoint(self, ctx: StepContext, resource: Resource) -> None:
        """Delete the endpoint's kernel objects (its sandbox's namespace is not being
        removed: kernel/apply.py skips those)."""
        ...

    # export
    def rebuild_networks(self, observed: State) -> dict[str, Resource]:
        """Network resources of networks with no kernel object of their own, rebuilt
        from their endpoints (export needs a network for each)."""
        ...

    def network_spec(self, resource: Resource, ipam: list[dict[str, Any]]) -> dict[str, Any]:
        """The manifest `spec` of an observed network (`ipam`: its pools, already
        rebuilt), leaving out what equals the default."""
        ...


# --- shared by several drivers -------------------------------------------------------


class NoKernelObjects:
    """The parts of a driver whose networks and endpoints have no kernel object."""

    default_pools = False
    publishes_ports = False
    options: frozenset[str] = frozenset()
    exclusive_options: tuple[str, ...] = ()
    interface_options: tuple[str, ...] = ()
    replacement_fields: Mapping[str, frozenset[str]] = {}
    network_link_kind: str | None = None
    host_end_kind: str | None = None
    interface_kind: str | None = None

    def check_network(self, network: Network) -> list[FieldProblem]:
        return []

    def check_endpoint(self, endpoint: Endpoint, network: Network) -> list[FieldProblem]:
        return []

    def network_link_name(self, network: Network) -> str | None:
        return None

    def network_attrs(self, network: Network) -> dict[str, AttrValue] | None:
        return None

    def endpoint_attrs(self, ctx: EndpointContext) -> dict[str, AttrValue] | None:
        return None

    def owns(self, resource: Resource) -> bool:
        return False

    def host_link(self, resource: Resource) -> str | None:
        return None

    def describe(self, resource: Resource) -> str:
        return ""

    def kernel_problems(self, resource: Resource, observed: State) -> list[str]:
        return []

    def restorable(self, resource: Resource) -> bool:
        return False

    def observe_network(self, link: LinkInfo, addresses: Sequence[str]) -> dict[str, AttrValue]:
        raise NotImplementedError("this driver makes no network link")

    def observe_endpoint(
        self, host: LinkInfo | None, peer: PeerEnd | None,
        networks_by_link: Mapping[int, str], host_link_names: Mapping[int, str],
    ) -> dict[str, AttrValue]:
        raise NotImplementedError("this driver makes no endpoint links")

    def is_leftover(self, link: LinkInfo, masters: set[int], addressed: set[int]) -> bool:
        return False

    def _nothing(self, ctx: StepContext, resource: Resource) -> None:
        """No kernel object, so no resource, so no step ever reaches here."""

    create_network = update_network = delete_network = _nothing
    create_endpoint = update_endpoint = delete_endpoint = _nothing

    def rebuild_networks(self, observed: State) -> dict[str, Resource]:
        return {}

    def network_spec(self, resource: Resource, ipam: list[dict[str, Any]]) -> dict[str, Any]:
        return {}


def addressless_problems(endpoint: Endpoint, network: Network) -> list[FieldProblem]:
    """An endpoint with no interface of its own cannot ask for addresses or a MAC."""
    return [
        (path, f"{network.key} uses the {network.spec.driver} driver: its endpoints have no "
               "interface to address; remove it")
        for path, value in (("spec.ipv4Address", endpoint.spec.ipv4_address),
                            ("spec.ipv6Address", endpoint.spec.ipv6_address),
                            ("spec.macAddress", endpoint.spec.mac_address))
        if value is not None
    ]


def no_ipam_problems(network: Network) -> list[FieldProblem]:
    """A network whose endpoints get no interface has nothing to address."""
    if not network.spec.ipam:
        return []
    return [("spec.ipam", f"a {network.spec.driver} network takes no ipam: its endpoints get "
                          "no interface of their own; remove spec.ipam")]


def gateways(ctx: EndpointContext) -> dict[str, AttrValue]:
    """`gateway4`/`gateway6`: the first pool's gateway of a family the endpoint is addressed in."""
    pools = ctx.network.spec.ipam
    result: dict[str, AttrValue] = {}
    for version, attr in ((4, "gateway4"), (6, "gateway6")):
        gateway = next((p.effective_gateway() for p in pools if p.subnet.version == version), None)
        addressed = ctx.assignment.for_family(version) is not None
        wanted = ctx.endpoint.spec.gateway and gateway and addressed
        result[attr] = (str(gateway),) if wanted else None
    return result


def addresses(ctx: EndpointContext) -> dict[str, AttrValue]:
    ipv4, ipv6 = ctx.assignment.ipv4, ctx.assignment.ipv6
    return {"ipv4": (str(ipv4),) if ipv4 else None, "ipv6": (str(ipv6),) if ipv6 else None}


def interface_attrs(peer: PeerEnd) -> dict[str, AttrValue]:
    """What observation reads off an endpoint's interface, whatever its driver."""
    v4 = tuple(a for a in peer.addresses if ":" not in a)
    v6 = tuple(a for a in peer.addresses if ":" in a)
    return {
        "ifname": peer.link.name,
        "mac": peer.link.mac,
        "ipv4": v4 or None,
        "ipv6": v6 or None,
        "gateway4": tuple(peer.gateways[4]) or None,
        "gateway6": tuple(peer.gateways[6]) or None,
    }


def text_values(resource: Resource, *attrs: str) -> list[str]:
    """The texts of tuple-valued attributes `attrs`, in that order."""
    values: list[str] = []
    for attr in attrs:
        value = resource.get(attr)
        if isinstance(value, tuple):
            values += [str(v) for v in value]
    return values


def first_text(resource: Resource, attr: str) -> str | None:
    """The first value of a tuple-valued attribute (a desired endpoint has at most one
    gateway per family)."""
    value = resource.get(attr)
    return str(value[0]) if isinstance(value, tuple) and value else None


def wants_ipv6(resource: Resource) -> bool:
    """IPv4-only interfaces get no IPv6 link-local address.

    Otherwise every interface coming up sends DAD, MLD and router solicitations
    that a bridge floods to all its ports: at 1000 endpoints on one bridge that
    made creation quadratic (12 s instead of 5 s for the links alone).
    """
    return resource.get("ipv6") is not None


def interface_summary(resource: Resource, link: str) -> str:
    """`<link> -> sandbox:ifname  addresses` of an endpoint (plan lines)."""
    text = link
    if resource.get("sandbox") is not None:
        text += f" -> {resource.get('sandbox')}:{resource.get('ifname')}"
    held = [str(external(a, resource.get(a))) for a in ("ipv4", "ipv6") if resource.get(a)]
    return f"{text}  {', '.join(held)}" if held else text


def owned_link(rtnl: Netlink, owner: Owner) -> LinkInfo | None:
    """The link of `rtnl`'s namespace that carries `owner`'s marker, if any."""
    return next((link for link in rtnl.links() if Owner.parse(link.alias) == owner), None)


def int_attr(resource: Resource, attr: str) -> int:
    return int(str(resource.get(attr)))

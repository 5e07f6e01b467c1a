"""The driver interface: a network driver's whole slice behind one protocol.

A driver says which manifest options it takes and checks them; turns a
Network and its joined endpoints into resources (desired state); turns the
kernel links it made back into the same resources (observation); creates,
updates and deletes its kernel objects (apply steps); and rebuilds manifests
from what it observed (export). Everything else in cnm reaches a driver through
the registry (`reconciler.drivers`), never by its name.

Drivers stay pure: the kernel layer hands their apply steps a `StepContext`
and their observation the links it read, both protocols of kernel_view.py, so
this package imports nothing from `reconciler.kernel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the drivers import the model; the model validates through them
    from reconciler.drivers.kernel_view import LinkInfo, PeerEnd, StepContext
    from reconciler.ipam import Assignment
    from reconciler.model import Endpoint, Network, Sandbox
    from reconciler.state import AttrValue, Resource, State

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
    ifname: str  # spec.ifname, or the default interface_defaults chose
    routes: frozenset[int]  # IP versions whose default route goes through this endpoint


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
    #: the network's gateway addresses are on the host, where cnm's resolver listens
    #: (reconciler/resolver): its sandboxes resolve their peers' names
    @property
    def serves_names(self) -> bool: ...
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
        `networks_by_link` maps the ifindex of each network's host link to its name.

        Beyond the two ends, look up only `networks_by_link[host.master]` and
        `host_link_names[peer.link.peer_index]`: `cnm watch` (kernel/live.py) reuses
        an endpoint whose ends and those two lookups did not change."""
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

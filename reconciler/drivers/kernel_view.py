"""What the kernel layer hands a driver: links as observation read them, a netlink
handle per namespace, and the driver-independent plumbing of apply.

Protocols, so that the drivers import nothing from `reconciler.kernel`:
kernel/rtnl.py's `Link` and `Rtnl` and kernel/apply.py's `ApplyContext` fit them
(mypy checks it where the kernel layer hands them over).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # validation loads the drivers, not the kernel-state model
    from reconciler.state import Owner, Resource, State


class VxlanInfo(Protocol):
    """A VXLAN link's settings (kernel/rtnl.Vxlan)."""

    @property
    def vni(self) -> int: ...
    @property
    def local(self) -> str | None: ...
    @property
    def port(self) -> int: ...
    @property
    def learning(self) -> bool: ...
    @property
    def proxy(self) -> bool: ...


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
    @property
    def vxlan(self) -> VxlanInfo | None: ...


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
    def add_bridge(self, name: str, *, group: int, mac: str | None = None) -> None: ...
    def add_veth(
        self, name: str, *, mtu: int, group: int, master: int, up: bool,
        peer_name: str, peer_netns: str, peer_mac: str | None,
    ) -> LinkInfo | None:
        """The host end as the kernel echoed its creation (its `peer_index`: the peer's
        ifindex), or None from a kernel that does not echo (before Linux 6.2)."""
        ...
    def add_macvlan(
        self, name: str, *, parent: int, mode: str, netns_name: str, group: int,
        mtu: int | None, mac: str | None,
    ) -> None: ...
    def add_vxlan(
        self, name: str, *, vni: int, local: str, port: int, group: int, mtu: int,
    ) -> None: ...
    def fdb_entries(self, index: int) -> list[tuple[str, str]]: ...
    def neighbour_entries(self, index: int) -> list[tuple[str, str]]: ...
    def add_fdb(self, index: int, mac: str, vtep: str) -> None: ...
    def delete_fdb(self, index: int, mac: str, vtep: str) -> None: ...
    def add_neighbour(self, index: int, address: str, mac: str) -> None: ...
    def delete_neighbour(self, index: int, address: str, mac: str) -> None: ...
    def change_entries(
        self, index: int, *, fdb_gone: Iterable[tuple[str, str]] = (),
        fdb_new: Iterable[tuple[str, str]] = (),
        neighbours_gone: Iterable[tuple[str, str]] = (),
        neighbours_new: Iterable[tuple[str, str]] = (),
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


def owned_link(rtnl: Netlink, owner: Owner) -> LinkInfo | None:
    """The link of `rtnl`'s namespace that carries `owner`'s marker, if any."""
    from reconciler.state import Owner

    return next((link for link in rtnl.links() if Owner.parse(link.alias) == owner), None)

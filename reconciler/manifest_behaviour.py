"""What a manifest object answers beyond its fields: its key, its bridge's and
namespace's names, its hostname, a pool's gateway.

Mixins shared by the pydantic model (`reconciler.model`) and the plain model
of `cnm validate`'s start-up (`reconciler.plain_model`), so that both answer
alike. They hold no field: each class that mixes one in declares the fields
(the annotations below are for the type checker only; at run time pydantic
must not see them, and the plain classes keep their slots).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler import naming
from reconciler.resource_key import ResourceKey

if TYPE_CHECKING:
    from typing import Protocol

    from reconciler.manifest_values import IPAddress, IPNetwork

    class _Metadata(Protocol):
        @property
        def name(self) -> str: ...

    class _NetworkSpec(Protocol):
        @property
        def bridge(self) -> str | None: ...

    class _SandboxSpec(Protocol):
        @property
        def netns(self) -> str | None: ...
        @property
        def hostname(self) -> str | None: ...


class PoolBehaviour:
    __slots__ = ()
    if TYPE_CHECKING:
        subnet: IPNetwork
        gateway: IPAddress | None

    def effective_gateway(self) -> IPAddress:
        """The gateway, defaulting to the first usable address so it never shifts."""
        if self.gateway is not None:
            return self.gateway
        return self.subnet.network_address + 1


class ObjectBehaviour:
    __slots__ = ()
    if TYPE_CHECKING:
        kind: str
        metadata: _Metadata

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.metadata.name)


class NetworkBehaviour(ObjectBehaviour):
    __slots__ = ()
    if TYPE_CHECKING:
        spec: _NetworkSpec

    @property
    def bridge_name(self) -> str:
        """The kernel bridge: `spec.bridge`, else a stable name derived from this network only."""
        if self.spec.bridge is not None:
            return self.spec.bridge
        return naming.default_bridge_name(self.metadata.name)


class SandboxBehaviour(ObjectBehaviour):
    __slots__ = ()
    if TYPE_CHECKING:
        spec: _SandboxSpec

    @property
    def netns_name(self) -> str:
        """Name under /run/netns: `spec.netns`, else the sandbox's own name."""
        return self.spec.netns if self.spec.netns is not None else self.metadata.name

    @property
    def effective_hostname(self) -> str:
        return self.spec.hostname if self.spec.hostname is not None else self.metadata.name

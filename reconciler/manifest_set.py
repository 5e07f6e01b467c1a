"""The collection of manifest objects (`Manifests`) and where each was written.

Apart from the pydantic model (`reconciler.model`) so that the validation rules
and `cnm validate`'s start-up, which checks the plain objects of
`reconciler.plain_model`, hold a collection without importing pydantic. (The
model does not re-export them: that import would close a cycle with the
model's types named here.)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from reconciler.resource_key import ResourceKey, item_order

if TYPE_CHECKING:
    from reconciler.model import Endpoint, Manifest, Network, Sandbox


@dataclass(frozen=True)
class ManifestSource:
    """Where an object was written: file, 1-based document index, line of its first key."""

    file: str
    document: int
    line: int | None


_UNKNOWN_SOURCE = ManifestSource("<unknown>", 0, None)


def _sorted_view(items: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(sorted(items.items())))


@dataclass(frozen=True)
class Manifests:
    """The desired objects, each kind keyed and sorted by name.

    `duplicates` keeps the objects that reused a name already taken in their
    kind (the first one wins in the mappings), so that `reconciler.validation.validate()` can report
    them instead of silently dropping them.
    """

    networks: Mapping[str, Network] = field(default_factory=dict)
    sandboxes: Mapping[str, Sandbox] = field(default_factory=dict)
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    sources: Mapping[ResourceKey, ManifestSource] = field(default_factory=dict)
    duplicates: tuple[tuple[Manifest, ManifestSource], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "networks", _sorted_view(self.networks))
        object.__setattr__(self, "sandboxes", _sorted_view(self.sandboxes))
        object.__setattr__(self, "endpoints", _sorted_view(self.endpoints))
        object.__setattr__(self, "sources", MappingProxyType(dict(sorted(
            self.sources.items(), key=item_order))))

    @classmethod
    def build(cls, objects: Sequence[tuple[Manifest, ManifestSource]]) -> Manifests:
        """Collect objects without validating them (the caller runs `validate`)."""
        tables: dict[str, dict[str, Any]] = {"Network": {}, "Sandbox": {}, "Endpoint": {}}
        sources: dict[ResourceKey, ManifestSource] = {}
        duplicates: list[tuple[Manifest, ManifestSource]] = []
        for obj, source in objects:
            table = tables[obj.kind]
            if obj.metadata.name in table:
                duplicates.append((obj, source))
                continue
            table[obj.metadata.name] = obj
            sources[obj.key] = source
        return cls(
            networks=tables["Network"],
            sandboxes=tables["Sandbox"],
            endpoints=tables["Endpoint"],
            sources=sources,
            duplicates=tuple(duplicates),
        )

    def is_empty(self) -> bool:
        return not (self.networks or self.sandboxes or self.endpoints)

    def objects(self) -> list[Manifest]:
        """Every object: networks, then sandboxes, then endpoints, each in name order."""
        return [*self.networks.values(), *self.sandboxes.values(), *self.endpoints.values()]

    def source_of(self, key: ResourceKey) -> ManifestSource:
        """Where `key` was written; a placeholder for objects this collection does not hold."""
        return self.sources.get(key, _UNKNOWN_SOURCE)

    def endpoints_of_network(self, name: str) -> list[Endpoint]:
        """Endpoints on network `name`, in name order (indexed once: validation asks per object)."""
        return list(self._by_network.get(name, ()))

    def endpoints_of_sandbox(self, name: str) -> list[Endpoint]:
        """Endpoints joined to sandbox `name`, in name order."""
        return list(self._by_sandbox.get(name, ()))

    @functools.cached_property
    def _by_network(self) -> dict[str, list[Endpoint]]:
        index: dict[str, list[Endpoint]] = {}
        for endpoint in self.endpoints.values():
            index.setdefault(endpoint.spec.network, []).append(endpoint)
        return index

    @functools.cached_property
    def _by_sandbox(self) -> dict[str, list[Endpoint]]:
        index: dict[str, list[Endpoint]] = {}
        for endpoint in self.endpoints.values():
            if endpoint.spec.sandbox is not None:
                index.setdefault(endpoint.spec.sandbox, []).append(endpoint)
        return index

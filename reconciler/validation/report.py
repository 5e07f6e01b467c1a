"""`Reporter`: where the validation rules put their problems, each located at its line."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.errors import ManifestProblem
from reconciler.manifest_set import Manifests
from reconciler.resource_key import ResourceKey


class Reporter:
    """Collects problems, locating each at the line of its field when the loader knows it."""

    def __init__(
        self, manifests: Manifests, field_lines: Mapping[tuple[ResourceKey, str], int],
        unloaded: frozenset[ResourceKey] | None = frozenset(),
        external_networks: bool = False,
    ) -> None:
        self.manifests = manifests
        self.field_lines = field_lines
        self.problems: list[ManifestProblem] = []
        #: objects whose documents did not load (None: any may be one)
        self.unloaded = unloaded
        #: a network no manifest defines may be another apply set's (shared_networks.py)
        self.external_networks = external_networks

    def may_be_unloaded(self, key: ResourceKey) -> bool:
        """True when `key` may be an object whose document had problems of its own."""
        return self.unloaded is None or key in self.unloaded

    def where(self, key: ResourceKey, path: str) -> str:
        """`file:line` of `path` of object `key`: the other side a clash names."""
        source = self.manifests.source_of(key)
        line = self.line_of(key, path)
        return source.file if line is None else f"{source.file}:{line}"

    def line_of(self, key: ResourceKey, path: str) -> int | None:
        """Line of `path`, else of its nearest written parent, else of the document."""
        parts = path.split(".")
        while parts:
            line = self.field_lines.get((key, ".".join(parts)))
            if line is not None:
                return line
            parts.pop()
        return self.manifests.source_of(key).line

    def add(self, key: ResourceKey, path: str, message: str) -> None:
        source = self.manifests.source_of(key)
        self.problems.append(
            ManifestProblem(source.file, self.line_of(key, path), str(key), path, message)
        )

"""`Reporter`: where the validation rules put their problems, each located at its line."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.errors import ManifestProblem
from reconciler.model import Manifests
from reconciler.resource_key import ResourceKey


class Reporter:
    """Collects problems, locating each at the line of its field when the loader knows it."""

    def __init__(
        self, manifests: Manifests, field_lines: Mapping[tuple[ResourceKey, str], int]
    ) -> None:
        self.manifests = manifests
        self.field_lines = field_lines
        self.problems: list[ManifestProblem] = []

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

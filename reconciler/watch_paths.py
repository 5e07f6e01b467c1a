"""Which changed paths `cnm watch` follows, and how the loader and the log name them.

Manifests are named under the `-f` path as given (as `loader.load` names
them, so a changed file can be forgotten by `LoadCache`) and logged relative
to it. Hidden files and directories are not manifests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from reconciler.loader import YAML_SUFFIXES


class WatchedPaths:
    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = tuple(paths)
        self.roots = [Path(p).resolve() for p in paths]

    def directories(self, *more: Path) -> list[Path]:
        """The directories to watch: each -f path's (or its file's), and `more` (created)."""
        found = {r if r.is_dir() else r.parent for r in self.roots}
        for directory in more:
            directory.mkdir(parents=True, exist_ok=True)
            found.add(directory)
        return sorted(found)

    def manifest_file(self, change: str, path: Path) -> str | None:
        """A changed path as the loader names it (under the -f path as given), or None
        when it is not a manifest (nor a directory of them)."""
        for root, given in zip(self.roots, self.paths, strict=True):
            if path == root:
                return given
            try:
                relative = path.relative_to(root)
            except ValueError:
                continue
            if any(part.startswith(".") for part in relative.parts):
                return None
            if path.suffix in YAML_SUFFIXES or change == "deleted":  # a file, or a whole dir
                return os.path.join(given, str(relative))
        return None

    def display_name(self, file: str) -> str:
        """How the log names a manifest file: relative to its -f path."""
        path = Path(file).resolve()
        for root in self.roots:
            if path == root:
                return path.name
            with contextlib.suppress(ValueError):
                return str(path.relative_to(root))
        return file

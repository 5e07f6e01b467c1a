"""`LoadCache`: `load()` for a long-running process (`cnm watch`), parsing only what changed."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from reconciler import caching
from reconciler.caching import BuildMemo
from reconciler.document_objects import Objects, objects_of, validated
from reconciler.errors import ManifestProblem
from reconciler.manifest_files import expand_stat, printable, read_file
from reconciler.manifest_set import Manifests, ManifestSource
from reconciler.model import Manifest, Network
from reconciler.resource_key import ResourceKey
from reconciler.yaml_documents import parse


@dataclass(frozen=True)
class _LoadedFile:
    """One file's model objects (or its problems), reusable while the file is unchanged."""

    stamp: tuple[int, ...]
    objects: tuple[tuple[Manifest, ManifestSource], ...]
    field_lines: dict[tuple[ResourceKey, str], int]
    problems: tuple[ManifestProblem, ...]


def _stamp(path: str, found: os.stat_result | None = None) -> tuple[int, ...] | None:
    """The file's stat stamp (`found`: its stat, when the caller has it already)."""
    if found is None:
        try:
            found = os.stat(path)
        except OSError:
            return None
    return (found.st_mtime_ns, found.st_ctime_ns, found.st_size, found.st_ino, found.st_dev)


class LoadCache:
    """`load()` for a long-running process: only files that changed are parsed again.

    A file is reparsed when its stat stamp (mtime, ctime, size, inode) changes or
    when `forget()` names it (a file watcher's report, for changes within one
    timestamp tick). Cross-object validation always runs on the whole set, and
    the result is exactly what `load()` gives for the same paths (stdin aside).
    When nothing changed, the previous `Manifests` object itself is returned.
    """

    def __init__(self) -> None:
        self._files: dict[str, _LoadedFile] = {}
        self._last: tuple[object, Manifests] | None = None
        self._stale: set[str] = set()
        #: Files parsed again or gone in the last `load()` (for "what changed" reports).
        self.changed: list[str] = []
        #: the objects the last validation found without a problem (`validation.validate`)
        self._valid: BuildMemo[ResourceKey, bool] = BuildMemo()

    def forget(self, path: str | None = None) -> None:
        """Reparse `path` next time (every file when None)."""
        if path is None:
            self._stale.update(self._files)
        else:
            self._stale.add(path)
        self._last = None

    def load(self, paths: Sequence[str],
             elsewhere: Mapping[str, Network] | None = None) -> Manifests:
        """`loader.load` of `paths`, parsing again only the files that changed
        (`elsewhere`: other apply sets' networks an endpoint may join, as there)."""
        problems: list[ManifestProblem] = []
        loaded: list[_LoadedFile] = []
        stamps: list[tuple[str, tuple[int, ...]]] = []
        seen: set[str] = set()
        self.changed = []
        stale, self._stale = self._stale, set()
        for path in paths:
            for file, found in expand_stat(path, problems):
                stamp = _stamp(file, found)
                cached = self._files.get(file)
                fresh = stamp is None or cached is None or cached.stamp != stamp or file in stale
                if cached is None or fresh or not caching.ENABLED:
                    cached = self._parse_file(file, stamp)
                    if fresh:
                        self.changed.append(file)
                    if stamp is not None:
                        self._files[file] = cached
                seen.add(file)
                stamps.append((file, cached.stamp))
                loaded.append(cached)
        for gone in sorted(set(self._files) - seen):
            del self._files[gone]
            self.changed.append(gone)
        key = (tuple(stamps), tuple(sorted((elsewhere or {}).items())))
        if caching.ENABLED and not problems and self._last is not None and self._last[0] == key:
            return self._last[1]
        objects: Objects = []
        for entry in loaded:
            problems += entry.problems
            objects += entry.objects
        manifests = validated(objects, _FieldLines(loaded), problems, self._valid,
                              elsewhere=elsewhere)
        self._last = (key, manifests)
        return manifests

    @staticmethod
    def _parse_file(file: str, stamp: tuple[int, ...] | None) -> _LoadedFile:
        problems: list[ManifestProblem] = []
        text = read_file(file, problems)
        documents = parse(text, printable(file), problems) if text is not None else []
        objects, field_lines = objects_of(documents, problems)
        return _LoadedFile(stamp or (), tuple(objects), field_lines, tuple(problems))


class _FieldLines(Mapping[tuple[ResourceKey, str], int]):
    """The field lines of every file, the first file's where several have one: what
    merging them into one dict gives, but looked up only when a problem is located
    (merging some 10 000 entries on every load cost more than the rest of it)."""

    def __init__(self, loaded: Sequence[_LoadedFile]) -> None:
        self._loaded = loaded
        self._merged: dict[tuple[ResourceKey, str], int] | None = None

    def __getitem__(self, where: tuple[ResourceKey, str]) -> int:
        for entry in self._loaded:
            line = entry.field_lines.get(where)
            if line is not None:
                return line
        raise KeyError(where)

    def _all(self) -> dict[tuple[ResourceKey, str], int]:
        if self._merged is None:
            self._merged = {}
            for entry in self._loaded:
                for where, line in entry.field_lines.items():
                    self._merged.setdefault(where, line)
        return self._merged

    def __iter__(self) -> Iterator[tuple[ResourceKey, str]]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

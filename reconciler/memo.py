"""A cache of the previous build's results, for pure functions called again and again.

`cnm watch` rebuilds the desired state and the firewall's view of a thousand
objects after every change, though most of them did not change: the loader
and the live observation hand back the very same objects for what is
unchanged. A result is reused when its inputs equal those it was built from
(compared as one tuple: identity first, element by element, in C); entries a
build did not use are dropped by the next one, so the cache never outgrows
one build.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BuildMemo(Generic[K, V]):
    """Results of the previous build by key, with the inputs each was built from."""

    def __init__(self) -> None:
        self._previous: dict[K, tuple[tuple[object, ...], V]] = {}
        self._current: dict[K, tuple[tuple[object, ...], V]] = {}

    def next_build(self) -> BuildMemo[K, V]:
        """Start a build: what the last one used becomes what this one may reuse."""
        self._previous, self._current = self._current or self._previous, {}
        return self

    def get(self, key: K, inputs: tuple[object, ...]) -> V | None:
        entry = self._previous.get(key)
        if entry is None or entry[0] != inputs:
            return None
        self._current[key] = entry
        return entry[1]

    def put(self, key: K, inputs: tuple[object, ...], value: V) -> V:
        self._current[key] = (inputs, value)
        return value

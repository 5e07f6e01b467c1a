"""The identity of a CNM object (`ResourceKey`) and its sort keys.

Kept apart from state.py, which re-exports them, because manifest validation
names objects by key but needs nothing else of the kernel-state model: `cnm
validate` loads this small module, not state.py's types, enum and regex.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identity of a CNM object inside one apply set."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


#: Sort key giving ResourceKey's own order, compared as plain tuples (in C): a state
#: of a big host sorts thousands of keys each time it is built.
key_order = operator.attrgetter("kind", "name")


def item_order(item: tuple[ResourceKey, object]) -> tuple[str, str]:
    """Sort key of a (ResourceKey, value) pair: `key_order` of its key."""
    return (item[0].kind, item[0].name)

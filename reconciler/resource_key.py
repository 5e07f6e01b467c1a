"""The identity of a CNM object (`ResourceKey`) and its sort keys.

Kept apart from state.py, which re-exports them, because manifest validation
names objects by key but needs nothing else of the kernel-state model: `cnm
validate` loads this small module, not state.py's types, enum and regex.
"""

from __future__ import annotations

import operator
from typing import NamedTuple


class ResourceKey(NamedTuple):
    """Identity of a CNM object inside one apply set.

    A named tuple, not a dataclass: hashing and comparing it is then done in C, and
    a reconcile of `cnm watch` at 1000 endpoints looks keys up some 40 000 times
    (a dataclass's generated `__hash__` runs in Python). Ordered as (kind, name).
    """

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


#: Sort key giving ResourceKey's own order, compared as plain tuples (in C): a state
#: of a big host sorts thousands of keys each time it is built.
key_order = operator.attrgetter("kind", "name")

#: Sort key of a (ResourceKey, value) pair: `key_order` of its key (the key itself, a
#: tuple ordered as (kind, name); picked in C).
item_order = operator.itemgetter(0)

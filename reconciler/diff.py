"""Desired vs observed -> typed changes.

Resources are flat maps of normalised attribute values (sorted tuples,
canonical address text), so comparing attribute by attribute is the exact
diff. Only attributes the desired resource sets are compared ("compare only
what the user said"): an attribute it leaves out is the kernel's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.state import AttrValue, Resource


@dataclass(frozen=True)
class Change:
    """One attribute that differs: `path` is the attribute name."""

    path: str
    old: AttrValue
    new: AttrValue


def diff_attrs(desired: Mapping[str, AttrValue], observed: Mapping[str, AttrValue]) -> list[Change]:
    """Changes that turn `observed` into `desired`, restricted to desired's attributes."""
    if desired.items() <= observed.items():  # the common case, checked in C
        return []
    return [
        Change(name, observed.get(name), value)
        for name, value in sorted(desired.items())
        if observed.get(name) != value
    ]


def diff_resources(desired: Resource, observed: Resource) -> list[Change]:
    """Attribute changes between two versions of one resource."""
    return diff_attrs(desired.attrs, observed.attrs)

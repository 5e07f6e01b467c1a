"""The names of the registered network drivers: adding a driver adds one line here.

Kept apart from the drivers themselves, and importing nothing, because the
manifest model takes its `driver` vocabulary from here while the drivers
import the model: `reconciler.drivers` loads the module `reconciler.drivers.<name>`
of each name below and registers its `DRIVER`.
"""

from __future__ import annotations

#: Registered drivers, in the order the schema and the messages list them, each with
#: its exclusive options: the network fields only that driver takes (validation
#: rejects them on any other driver's network without loading the owner).
EXCLUSIVE_OPTIONS: dict[str, tuple[str, ...]] = {
    "bridge": ("bridge",),
    "macvlan": ("parent", "mode"),
    "null": (),
    "host": (),
    "overlay": ("vni",),
}

NAMES: tuple[str, ...] = tuple(EXCLUSIVE_OPTIONS)

#: The driver of a network that names none.
DEFAULT = NAMES[0]

#: The values a macvlan network's `spec.mode` takes (part of the manifest schema).
MACVLAN_MODES: tuple[str, ...] = ("bridge", "private", "vepa", "passthru")


def from_yaml(value: object) -> object:
    """The driver `value` names: YAML reads `driver: null` as no value, but the user
    meant the driver called null."""
    return "null" if value is None else value

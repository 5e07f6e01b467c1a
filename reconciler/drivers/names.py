"""The names of the registered network drivers: adding a driver adds one line here.

Kept apart from the drivers themselves, and importing nothing, because the
manifest model takes its `driver` vocabulary from here while the drivers
import the model: `reconciler.drivers` loads the module `reconciler.drivers.<name>`
of each name below and registers its `DRIVER`.
"""

from __future__ import annotations

#: Registered drivers, in the order the schema and the messages list them.
NAMES: tuple[str, ...] = (
    "bridge",
    "macvlan",
    "null",
    "host",
    "overlay",
)

#: The driver of a network that names none.
DEFAULT = NAMES[0]

#: The values a macvlan network's `spec.mode` takes (part of the manifest schema).
MACVLAN_MODES: tuple[str, ...] = ("bridge", "private", "vepa", "passthru")


def from_yaml(value: object) -> object:
    """The driver `value` names: YAML reads `driver: null` as no value, but the user
    meant the driver called null."""
    return "null" if value is None else value

"""Desired and observed state share one type, so that diffing them is plain data work.

A `State` maps a `ResourceKey` (kind, name) to a frozen `Resource`: the
kernel-visible attributes of one CNM object of one apply set. Attribute values
are JSON-like (str, int, bool, None, a `Drift`, an `MtuPair`, or tuples of
those), already normalised (sorted tuples, canonical address text), so
equality means "no drift". Address lists are tuples.

A desired resource may leave an attribute out: that means "the user did not
say", and the diff ignores whatever the kernel has there.

An observed value no manifest could ask for (firewall rules changed by hand) is
a `Drift`, never a sentinel string: it equals no desired value, so the diff
always shows it, and plans print it as its text.

Typed values have one text form, made in one place: `external()` (address
lists joined with ", ", an `MtuPair` as "host/sandbox", a drift as its note)
for plans, `thaw()` for JSON documents (`cnm observe`, saved plans), and
`internal()` reads JSON back typed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

# The typed values that are not plain JSON live in their own module, re-exported here
# with the rest of the state's value types.
from reconciler.attr_values import Drift as Drift
from reconciler.attr_values import DriftReason as DriftReason
from reconciler.attr_values import MtuPair as MtuPair

# The key lives in its own module (validation needs it, not the rest of this one).
from reconciler.resource_key import ResourceKey as ResourceKey
from reconciler.resource_key import item_order as item_order
from reconciler.resource_key import key_order as key_order

Kind = Literal["Network", "Sandbox", "Endpoint", "Resolver"]
KINDS: tuple[Kind, ...] = ("Network", "Sandbox", "Endpoint", "Resolver")

AttrValue = str | int | bool | None | Drift | MtuPair | tuple["AttrValue", ...]


#: Attributes whose observed value may be a `Drift` or, for `ports`, hold some (the
#: firewall's): only these read a drift's text form back from JSON as a drift, so
#: that no other text (a hosts file, say) is ever taken for one.
DRIFT_ATTRS = frozenset({"internal", "icc", "masquerade", "localhost", "ports", "host_firewall"})

#: Attributes holding addresses ("address/prefix", or gateway addresses), as tuples.
ADDRESS_LISTS = frozenset({"ipv4", "ipv6", "gateway4", "gateway6"})

#: Attributes the kernel cannot change in place, whatever the driver: a difference
#: forces replacement. Each driver adds its own (`drivers.REPLACEMENT_FIELDS`).
COMMON_REPLACEMENT_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "Network": frozenset({"driver", "subnets"}),
        "Sandbox": frozenset({"netns"}),
        "Endpoint": frozenset({"network", "sandbox"}),
        "Resolver": frozenset(),
    }
)

MARKER_PREFIX = "cnm/v1"
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
#: Length (hex digits) of the digest of the applied desired attributes a marker ends
#: with (` d=...`); markers written before it have none and stay valid.
DIGEST_LENGTH = 12
_MARKER_RE = re.compile(
    rf"^cnm/v1 set=(?P<set>{_LABEL}) (?P<kind>Network|Sandbox|Endpoint)/(?P<name>{_LABEL})"
    rf"(?: net=(?P<net>{_LABEL}))?(?: d=(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}}))?$"
)


@dataclass(frozen=True, order=True)
class Owner:
    """Who owns a kernel object: the manifest object and its apply set.

    Written into the object itself (a link's ifalias), so the kernel alone
    tells what cnm manages.
    """

    set_name: str
    kind: str
    name: str

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.name)

    def marker(self) -> str:
        return f"{MARKER_PREFIX} set={self.set_name} {self.kind}/{self.name}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner encoded in a marker, or None for anything cnm did not write."""
        if not text:
            return None
        match = _MARKER_RE.match(text)
        if match is None:
            return None
        return cls(match["set"], match["kind"], match["name"])

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} (set {self.set_name})"


def endpoint_marker(owner: Owner, network: str) -> str:
    """Marker of an endpoint whose network cannot be read off a bridge (macvlan)."""
    return f"{owner.marker()} net={network}"


def marker_network(text: str | None) -> str | None:
    """The network an endpoint marker names, if it names one."""
    match = _MARKER_RE.match(text or "")
    return match["net"] if match else None


def marker_digest(text: str | None) -> str | None:
    """The digest of the applied desired attributes a marker carries, if any."""
    match = _MARKER_RE.match(text or "")
    return match["digest"] if match else None


def attrs_digest(resource: Resource) -> str:
    """Short digest of a desired resource's attributes, as apply writes it into the
    object's marker (`applied_marker`). A later plan that finds the object different
    from its desired state while the marker's digest equals the digest of that very
    desired state knows the manifests did not change since: the kernel did (drift,
    `Action.outside`). Any driver labelling its objects calls `applied_marker`."""
    import hashlib
    import json

    canonical = json.dumps({k: thaw(external(k, v)) for k, v in resource.attrs.items()},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:DIGEST_LENGTH]


def applied_marker(
    resource: Resource, desired: State | None = None, network: str | None = None
) -> str:
    """The marker apply writes on `resource`'s kernel objects: the owner (and, for an
    endpoint whose network cannot be read off a bridge, the network), then the digest
    of the desired attributes being applied, unless the `desired` state being applied
    records one for it (a rollback puts back the markers it found)."""
    base = resource.owner.marker() if network is None else endpoint_marker(resource.owner,
                                                                          network)
    recorded = desired.applied_digests.get(resource.key) if desired is not None else None
    return f"{base} d={recorded or attrs_digest(resource)}"


#: Element types a list or tuple of which `freeze` takes as it is.
_PLAIN = frozenset({str, int, bool, type(None)})


def freeze(value: object) -> AttrValue:
    """Turn lists into tuples recursively so attribute values are hashable and comparable."""
    if isinstance(value, (list, tuple)):
        if set(map(type, value)) <= _PLAIN:  # no nesting: checked in C (a resolver's
            return tuple(value)               # records are thousands of texts)
        return tuple(freeze(v) for v in value)
    if value is None or isinstance(value, (str, int, bool, Drift, MtuPair)):
        return value
    raise TypeError(f"unsupported attribute value {value!r}")


def external(name: str, value: AttrValue) -> AttrValue:
    """Attribute `name` as plans and JSON documents show it: an address list as one
    ", "-joined text (the form these documents have always had); other values as
    they are (`thaw` and `format_value` give a drift or an `MtuPair` its text)."""
    if name in ADDRESS_LISTS and isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return value


def internal(name: str, value: AttrValue) -> AttrValue:
    """The typed value of attribute `name` read back from its JSON form."""
    if name in DRIFT_ATTRS:
        return _read_drift(value)
    if not isinstance(value, str):
        return value
    if name in ADDRESS_LISTS:
        return tuple(v.strip() for v in value.split(",") if v.strip()) or None
    if name == "mtu":
        return MtuPair.from_text(value) or value
    return value


@dataclass(frozen=True)
class Resource:
    """One CNM object as the kernel shows it (observed) or should show it (desired)."""

    key: ResourceKey
    set_name: str
    attrs: Mapping[str, AttrValue]

    def __post_init__(self) -> None:
        frozen = {k: freeze(v) for k, v in sorted(self.attrs.items())}
        object.__setattr__(self, "attrs", MappingProxyType(frozen))

    def extended(self, extra: Mapping[str, AttrValue]) -> Resource:
        """This resource with `extra` attributes added or replaced; only those are frozen
        again (observation adds firewall attributes to every endpoint of a big host)."""
        attrs = dict(self.attrs)
        attrs.update((k, freeze(v)) for k, v in extra.items())
        resource = object.__new__(Resource)
        object.__setattr__(resource, "key", self.key)
        object.__setattr__(resource, "set_name", self.set_name)
        object.__setattr__(resource, "attrs", MappingProxyType(dict(sorted(attrs.items()))))
        return resource

    def __reduce__(self) -> tuple[type[Resource], tuple[ResourceKey, str, dict[str, AttrValue]]]:
        """Pickled as its fields (a read-only mapping view cannot be): namespaces read
        by worker processes come back this way (kernel/parallel.py)."""
        return (Resource, (self.key, self.set_name, dict(self.attrs)))

    @property
    def owner(self) -> Owner:
        return Owner(self.set_name, self.key.kind, self.key.name)

    def get(self, name: str) -> AttrValue:
        return self.attrs.get(name)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.key.kind,
            "name": self.key.name,
            "set": self.set_name,
            "attrs": {k: thaw(external(k, v)) for k, v in self.attrs.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Resource:
        attrs = data["attrs"]
        if not isinstance(attrs, Mapping):
            raise TypeError("attrs must be a mapping")
        return cls(
            ResourceKey(str(data["kind"]), str(data["name"])),
            str(data["set"]),
            {str(k): internal(str(k), freeze(v)) for k, v in attrs.items()},
        )


def thaw(value: AttrValue) -> object:
    """An attribute value as plain JSON data (tuples as lists, a drift or an `MtuPair` as
    its text); address lists need `external` first, which knows them by name."""
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    if isinstance(value, Drift | MtuPair):
        return str(value)
    return value


def _read_drift(value: AttrValue) -> AttrValue:
    """`value` read back from JSON with each drift text as the `Drift` it stands for."""
    if isinstance(value, str):
        return Drift.from_text(value) or value
    if isinstance(value, tuple):
        return tuple(_read_drift(v) for v in value)
    return value


@dataclass(frozen=True)
class State:
    """Resources of one apply set, plus the kernel names that something else holds.

    `occupied` maps a kernel name ("link:br-x", "netns:web1") to a description
    of its holder when that holder is not a resource of this set: a foreign
    object ("not owned by cnm") or another set's object. The planner refuses to
    create a resource whose kernel names are occupied.
    """

    set_name: str
    resources: Mapping[ResourceKey, Resource] = field(default_factory=dict)
    occupied: Mapping[str, str] = field(default_factory=dict)
    #: Kernel names of links that carry cnm's creation marker (the link group) but
    #: no owner label: left by an apply interrupted between creating and labelling.
    #: Apply adopts such a link when it needs that exact name.
    orphans: frozenset[str] = frozenset()
    #: IPv4/IPv6 prefixes the host uses for things cnm does not own (addresses of
    #: other links, main-table routes): default address pools steer clear of them.
    reserved_prefixes: frozenset[str] = frozenset()
    #: Host-wide settings cnm may change, by sysctl name ("net.ipv4.ip_forward" -> on);
    #: empty when unknown (a snapshot from an older cnm). See `host_settings.py`.
    host_settings: Mapping[str, AttrValue] = field(default_factory=dict)
    #: The digest each object's marker carries (`attrs_digest` of what was last applied),
    #: for objects whose marker has one.
    applied_digests: Mapping[ResourceKey, str] = field(default_factory=dict)
    #: The host's other firewall configuration (`firewall.foreign.HostFirewall`), as
    #: observation read it; None when not observed (planning from a file, tests).
    #: Typed loosely so that this module imports nothing.
    host_firewall: object = None
    #: Networks other apply sets own, by name (each Resource's `set_name` is its owner),
    #: as the host namespace shows their links: what this set's endpoints may join
    #: (`shared_networks.py`). One set's network of a name when several sets own one.
    borrowable: Mapping[str, Resource] = field(default_factory=dict)
    #: "<owner set>/<network>" -> the endpoints of other sets than the network's owner
    #: on it and, seen from a set that is not the owner, the owner's endpoints too:
    #: (set, endpoint name, its addresses "address/prefix"), sorted.
    sharers: Mapping[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "resources",
            MappingProxyType(dict(sorted(self.resources.items(), key=item_order))),
        )
        object.__setattr__(self, "occupied", MappingProxyType(dict(sorted(self.occupied.items()))))
        object.__setattr__(self, "host_settings",
                           MappingProxyType(dict(sorted(self.host_settings.items()))))
        object.__setattr__(self, "applied_digests", MappingProxyType(
            dict(sorted(self.applied_digests.items(), key=item_order))))

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources.values())

    def __len__(self) -> int:
        return len(self.resources)

    def get(self, key: ResourceKey) -> Resource | None:
        return self.resources.get(key)

    def of_kind(self, kind: str) -> list[Resource]:
        return list(self._by_kind.get(kind, ()))

    @functools.cached_property
    def _by_kind(self) -> dict[str, list[Resource]]:
        """The resources of each kind, indexed on first use (a state of a big host is
        asked for its networks or endpoints a dozen times a reconcile)."""
        index: dict[str, list[Resource]] = {}
        for resource in self.resources.values():
            index.setdefault(resource.key.kind, []).append(resource)
        return index

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "set": self.set_name,
            "resources": [r.to_json() for r in self.resources.values()],
            "occupied": dict(self.occupied),
            "orphans": sorted(self.orphans),
            "reserved_prefixes": sorted(self.reserved_prefixes),
        }
        if self.host_settings:  # left out when unknown: older snapshots stay as they were
            document["host_settings"] = {k: thaw(v) for k, v in self.host_settings.items()}
        if self.applied_digests:
            document["applied_digests"] = {str(k): v for k, v in self.applied_digests.items()}
        if self.borrowable:  # left out when empty, like the two above
            document["borrowable"] = [r.to_json() for r in self.borrowable.values()]
        if self.sharers:
            document["sharers"] = {k: [[s, e, list(a)] for s, e, a in v]
                                   for k, v in self.sharers.items()}
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> State:
        raw = data.get("resources", [])
        occupied = data.get("occupied", {})
        if not isinstance(raw, list) or not isinstance(occupied, Mapping):
            raise TypeError("malformed state")
        orphans = data.get("orphans", [])
        reserved = data.get("reserved_prefixes", [])
        if not isinstance(orphans, list) or not isinstance(reserved, list):
            raise TypeError("malformed state")
        settings = data.get("host_settings", {})
        digests = data.get("applied_digests", {})
        if not isinstance(settings, Mapping) or not isinstance(digests, Mapping):
            raise TypeError("malformed state")
        resources = [Resource.from_json(r) for r in raw]
        borrowable = [Resource.from_json(_mapping(r)) for r in _list(data.get("borrowable", []))]
        sharers = data.get("sharers", {})
        if not isinstance(sharers, Mapping):
            raise TypeError("malformed state")
        return cls(
            str(data["set"]),
            {r.key: r for r in resources},
            {str(k): str(v) for k, v in occupied.items()},
            frozenset(str(o) for o in orphans),
            frozenset(str(r) for r in reserved),
            {str(k): freeze(v) for k, v in settings.items()},
            {ResourceKey(*str(k).split("/", 1)): str(v) for k, v in digests.items()},
            borrowable={r.key.name: r for r in borrowable},
            sharers={str(k): tuple(_sharer(u) for u in _list(v)) for k, v in sharers.items()},
        )


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError("malformed state")
    return value


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise TypeError("malformed state")
    return value


def _sharer(value: object) -> tuple[str, str, tuple[str, ...]]:
    user_set, endpoint, held = _list(value)
    return str(user_set), str(endpoint), tuple(str(a) for a in _list(held))


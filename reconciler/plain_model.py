"""The manifest model without pydantic: plain frozen objects for `cnm validate`'s start-up.

Importing pydantic and building the model's validators costs more than the
whole of a `cnm validate` may (docs/performance.md), so `validate` first reads
each document into these plain objects (reconciler/quick_load.py). They have
every field and default of the pydantic model's objects (`reconciler.model`),
the same properties (manifest_behaviour.py's mixins, which both mix in), and
their single values are parsed by the very functions the model validates
with (manifest_values.py).

The plain model is deliberately partial: it only ever says "these are the
values". Whatever it is not sure the pydantic model takes as is (a value of
another type that lax pydantic might coerce, a number out of range, an unknown
or missing field, a bad address) raises `Unsure`, and `validate` loads through
the pydantic model instead, which words every problem. So a plain object is
never a different answer, only an earlier one: tests/unit/test_plain_model.py
holds the two models to the same fields, defaults, values and properties on
generated documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Any, NamedTuple

from reconciler.drivers import names as driver_names
from reconciler.manifest_behaviour import (
    NetworkBehaviour,
    ObjectBehaviour,
    PoolBehaviour,
    SandboxBehaviour,
)
from reconciler.manifest_values import (
    ALIASES,
    API_VERSION,
    IPAddress,
    IPNetwork,
    dns_label,
    normalise_mac,
    parse_address,
    parse_network,
    parse_v4,
    parse_v6,
)

#: pydantic-core keeps integers beyond 64 bits too, but nothing needs them: unsure
_INT64 = 2**63


class Unsure(Exception):
    """The pydantic model must decide (and word) this document."""


# --- the objects: field for field the pydantic model's, in its order ---


class _Plain:
    """A frozen object whose fields are its slots, equal to another of its class with
    equal fields, as the pydantic model's frozen objects are (plain classes, not
    dataclasses: building nine dataclasses would cost a good part of what this
    module saves). Not a pydantic model: no `model_dump` and the like, which no
    caller of `quick_load` needs."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Plain)
        return self._fields() == other._fields()

    def __hash__(self) -> int:  # as pydantic's: a field holding a list makes it unhashable
        return hash((type(self), self._fields()))

    def __reduce__(self) -> tuple[object, ...]:
        """copy, deepcopy and pickle build the object again from its fields."""
        return (_rebuild, (type(self), dict(zip(self.__slots__, self._fields(), strict=True))))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


def _rebuild(cls: type[_Plain], values: dict[str, object]) -> _Plain:
    return cls(**values)


class IpamPool(PoolBehaviour, _Plain):
    __slots__ = ("subnet", "gateway", "ip_range", "aux_addresses")
    subnet: IPNetwork
    gateway: IPAddress | None
    ip_range: IPNetwork | None
    aux_addresses: dict[str, IPAddress]


class NetworkSpec(_Plain):
    __slots__ = (
        "driver", "bridge", "mtu", "internal", "icc", "masquerade", "host_firewall", "ipam",
        "parent", "mode", "vni",
    )
    driver: str
    bridge: str | None
    mtu: int | None
    internal: bool
    icc: bool
    masquerade: bool
    host_firewall: str
    ipam: list[IpamPool]
    parent: str | None
    mode: str | None
    vni: int | None


class DnsConfig(_Plain):
    __slots__ = ("servers", "search", "options")
    servers: list[IPAddress]
    search: list[str]
    options: list[str]


class SandboxSpec(_Plain):
    __slots__ = ("netns", "hostname", "domainname", "dns", "extra_hosts", "host")
    netns: str | None
    hostname: str | None
    domainname: str | None
    dns: DnsConfig | None
    extra_hosts: list[str]
    host: str | None


class PortMapping(_Plain):
    __slots__ = ("container_port", "host_port", "protocol", "host_ip")
    container_port: int
    host_port: int
    protocol: str
    host_ip: IPAddress | None


class EndpointSpec(_Plain):
    __slots__ = (
        "network", "sandbox", "ifname", "ipv4_address", "ipv6_address", "mac_address", "aliases",
        "gateway", "gw_priority", "ports",
    )
    network: str
    sandbox: str | None
    ifname: str | None
    ipv4_address: IPv4Address | None
    ipv6_address: IPv6Address | None
    mac_address: str | None
    aliases: list[str]
    gateway: bool | None
    gw_priority: int
    ports: list[PortMapping]


class Metadata(_Plain):
    __slots__ = ("name", "labels")
    name: str
    labels: dict[str, str]


class Network(NetworkBehaviour, _Plain):
    __slots__ = ("api_version", "kind", "metadata", "spec")
    api_version: str
    kind: str
    metadata: Metadata
    spec: NetworkSpec


class Sandbox(SandboxBehaviour, _Plain):
    __slots__ = ("api_version", "kind", "metadata", "spec")
    api_version: str
    kind: str
    metadata: Metadata
    spec: SandboxSpec


class Endpoint(ObjectBehaviour, _Plain):
    __slots__ = ("api_version", "kind", "metadata", "spec")
    api_version: str
    kind: str
    metadata: Metadata
    spec: EndpointSpec


PlainManifest = Network | Sandbox | Endpoint

# --- value parsers: the value as pydantic would hold it, or Unsure ---

Parse = Callable[[object], Any]


def _text(value: object) -> str:
    if type(value) is str:  # not a subclass, bytes or number lax pydantic might convert
        return value
    raise Unsure


def _integer(low: int, high: int) -> Parse:
    def parse(value: object) -> int:
        if type(value) is int and low <= value <= high:  # not a bool, float or string
            return value
        raise Unsure
    return parse


def _flag(value: object) -> bool:
    if type(value) is bool:
        return value
    raise Unsure


def _one_of(choices: tuple[str, ...]) -> Parse:
    def parse(value: object) -> str:
        if type(value) is str and value in choices:
            return value
        raise Unsure
    return parse


def _optional(parse: Parse) -> Parse:
    return lambda value: None if value is None else parse(value)


def _checked(parse: Parse) -> Parse:
    """One of manifest_values' parsers: its ValueError is the pydantic model's to word."""
    def checked(value: object) -> Any:
        if type(value) is not str:  # the parsers take objects YAML never makes: not here
            raise Unsure
        try:
            return parse(value)
        except ValueError:
            raise Unsure from None
    return checked


def _list_of(parse: Parse) -> Parse:
    def parse_list(value: object) -> list[Any]:
        if type(value) is not list:
            raise Unsure
        return [parse(item) for item in value]
    return parse_list


def _dict_of(parse: Parse) -> Parse:
    def parse_dict(value: object) -> dict[str, Any]:
        if type(value) is not dict:
            raise Unsure
        return {_text(key): parse(item) for key, item in value.items()}
    return parse_dict


_DRIVER_NAME = _one_of(driver_names.NAMES)


def _driver(value: object) -> str:
    name: str = _DRIVER_NAME(driver_names.from_yaml(value))
    return name


class _Field(NamedTuple):
    name: str
    #: the name the user writes (ALIASES), looked up once here rather than per document
    alias: str
    parse: Parse
    #: the value of an absent field; None: the field is required
    default: Callable[[], Any] | None


def _field(name: str, parse: Parse, default: Callable[[], Any] | None = None) -> _Field:
    return _Field(name, ALIASES.get(name, name), parse, default)


def _none() -> None:
    return None


def _build(cls: type, data: object) -> Any:
    """An object of `cls` from a YAML mapping, exactly as the pydantic model would make it."""
    if type(data) is not dict:
        raise Unsure
    fields = _FIELDS[cls]
    if not data.keys() <= _ALIASES_OF[cls]:
        raise Unsure  # an unknown field (or a snake_case name: the model takes aliases only)
    values = {}
    for name, alias, parse, default in fields:
        if alias in data:
            values[name] = parse(data[alias])
        elif default is None:
            raise Unsure
        else:
            values[name] = default()
    return cls(**values)


def _nested(cls: type) -> Parse:
    return lambda value: _build(cls, value)


def _empty(cls: type) -> Callable[[], Any]:
    return lambda: _build(cls, {})


_ADDRESS = _checked(parse_address)
_NETWORK = _checked(parse_network)
_PORT = _integer(1, 65535)
_TEXT_OR_NONE = _optional(_text)

_FIELDS: Mapping[type, tuple[_Field, ...]] = MappingProxyType({
    IpamPool: (
        _field("subnet", _NETWORK),
        _field("gateway", _optional(_ADDRESS), _none),
        _field("ip_range", _optional(_NETWORK), _none),
        _field("aux_addresses", _dict_of(_ADDRESS), dict),
    ),
    NetworkSpec: (
        _field("driver", _driver, lambda: driver_names.DEFAULT),
        _field("bridge", _TEXT_OR_NONE, _none),
        _field("mtu", _optional(_integer(68, 65535)), _none),
        _field("internal", _flag, lambda: False),
        _field("icc", _flag, lambda: True),
        _field("masquerade", _flag, lambda: True),
        _field("host_firewall", _one_of(("report", "accept")), lambda: "report"),
        _field("ipam", _list_of(_nested(IpamPool)), list),
        _field("parent", _TEXT_OR_NONE, _none),
        _field("mode", _optional(_one_of(driver_names.MACVLAN_MODES)), _none),
        _field("vni", _optional(_integer(1, 16777215)), _none),
    ),
    DnsConfig: (
        _field("servers", _list_of(_ADDRESS), list),
        _field("search", _list_of(_text), list),
        _field("options", _list_of(_text), list),
    ),
    SandboxSpec: (
        _field("netns", _TEXT_OR_NONE, _none),
        _field("hostname", _TEXT_OR_NONE, _none),
        _field("domainname", _TEXT_OR_NONE, _none),
        _field("dns", _optional(_nested(DnsConfig)), _none),
        _field("extra_hosts", _list_of(_text), list),
        _field("host", _TEXT_OR_NONE, _none),
    ),
    PortMapping: (
        _field("container_port", _PORT),
        _field("host_port", _PORT),
        _field("protocol", _one_of(("tcp", "udp")), lambda: "tcp"),
        _field("host_ip", _optional(_ADDRESS), _none),
    ),
    EndpointSpec: (
        _field("network", _text),
        _field("sandbox", _TEXT_OR_NONE, _none),
        _field("ifname", _TEXT_OR_NONE, _none),
        _field("ipv4_address", _optional(_checked(parse_v4)), _none),
        _field("ipv6_address", _optional(_checked(parse_v6)), _none),
        _field("mac_address", _optional(_checked(normalise_mac)), _none),
        _field("aliases", _list_of(_text), list),
        _field("gateway", _optional(_flag), _none),
        _field("gw_priority", _integer(-_INT64, _INT64 - 1), lambda: 0),
        _field("ports", _list_of(_nested(PortMapping)), list),
    ),
    Metadata: (
        _field("name", _checked(dns_label)),
        _field("labels", _dict_of(_text), dict),
    ),
    **{cls: (
        _field("api_version", _one_of((API_VERSION,))),  # required here: see document_objects
        _field("kind", _one_of((cls.__name__,))),
        _field("metadata", _nested(Metadata)),
        _field("spec", _nested(spec), None if spec is EndpointSpec else _empty(spec)),
    ) for cls, spec in ((Network, NetworkSpec), (Sandbox, SandboxSpec),
                        (Endpoint, EndpointSpec))},
})

_ALIASES_OF: Mapping[type, frozenset[str]] = MappingProxyType({
    cls: frozenset(f.alias for f in fields) for cls, fields in _FIELDS.items()
})

#: the kinds a document may be, by the name its `kind` field gives
KINDS: Mapping[str, type[PlainManifest]] = MappingProxyType(
    {"Network": Network, "Sandbox": Sandbox, "Endpoint": Endpoint})


def plain_object(data: Mapping[str, object]) -> PlainManifest:
    """The plain object of one YAML document's data; Unsure unless it is surely valid."""
    kind = data.get("kind")
    if type(kind) is not str or kind not in KINDS:
        raise Unsure
    obj: PlainManifest = _build(KINDS[kind], data)
    return obj

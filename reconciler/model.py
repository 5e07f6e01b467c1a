"""The manifest model: what users write, as frozen pydantic objects, and their collection.

The pydantic models check what one value alone can tell (types, ranges,
canonical subnets, DNS-label names, MAC syntax), so a loaded object is always
well-typed. Rules that need context (other objects, the kernel's name limits,
address plans) live in `reconciler.validation`; the JSON Schema for editors in
`reconciler.manifest_schema`.

Field names in messages are the camelCase names the user writes (`spec.ipam.0.ipRange`);
in Python the snake_case attribute names work too.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import (
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from reconciler import naming
from reconciler.drivers import names as driver_names
from reconciler.errors import show
from reconciler.resource_key import ResourceKey, item_order

API_VERSION: Literal["cnm/v1"] = "cnm/v1"

if TYPE_CHECKING:
    DriverName: TypeAlias = str
    MacvlanMode: TypeAlias = str
else:  # the registered drivers' names (drivers/names.py): a Literal of what is there
    DriverName = Literal[driver_names.NAMES]
    MacvlanMode = Literal[driver_names.MACVLAN_MODES]

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network

# Python attribute name -> the name users write. Explicit rather than a generic
# camelCase generator because the spec spells some of them its own way (hostIP).
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "api_version": "apiVersion",
        "ip_range": "ipRange",
        "aux_addresses": "auxAddresses",
        "extra_hosts": "extraHosts",
        "container_port": "containerPort",
        "host_port": "hostPort",
        "host_ip": "hostIP",
        "host_firewall": "hostFirewall",
        "ipv4_address": "ipv4Address",
        "ipv6_address": "ipv6Address",
        "mac_address": "macAddress",
        "gw_priority": "gwPriority",
    }
)


def _alias(name: str) -> str:
    return _ALIASES.get(name, name)


# An alias *generator* (not Field(alias=...)) keeps the snake_case names in the
# constructor signatures that type checkers see, so Python callers type-check.
_CONFIG = ConfigDict(
    frozen=True,
    extra="forbid",
    alias_generator=AliasGenerator(validation_alias=_alias, serialization_alias=_alias),
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    field_title_generator=lambda name, _info: _alias(name),
)


# --- value parsers: one clear message per bad value instead of one per union member ---


def _parse_address(value: object) -> object:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            pass
    raise ValueError(f"{show(value)} is not an IP address (e.g. 10.89.0.1 or fd00:89::1)")


def _parse_v4(value: object) -> object:
    address = _parse_address(value)
    if not isinstance(address, IPv4Address):
        raise ValueError(f"{address} is not an IPv4 address; IPv6 addresses go in ipv6Address")
    return address


def _parse_v6(value: object) -> object:
    address = _parse_address(value)
    if not isinstance(address, IPv6Address):
        raise ValueError(f"{address} is not an IPv6 address; IPv4 addresses go in ipv4Address")
    return address


def _parse_network(value: object) -> object:
    """A CIDR subnet with host bits zero: `10.89.0.1/24` is refused, not silently truncated."""
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    bad = ValueError(
        f"{show(value)} is not a subnet in CIDR form (e.g. 10.89.0.0/24 or fd00:89::/64)"
    )
    if not isinstance(value, str) or "/" not in value:
        raise bad
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        raise bad from None
    if interface.ip != interface.network.network_address:
        raise ValueError(
            f"{show(value)} has host bits set; write the canonical form {interface.network}"
        )
    return interface.network


AnyAddress = Annotated[IPAddress, BeforeValidator(_parse_address)]
V4Address = Annotated[IPv4Address, BeforeValidator(_parse_v4)]
V6Address = Annotated[IPv6Address, BeforeValidator(_parse_v6)]
AnyNetwork = Annotated[IPNetwork, BeforeValidator(_parse_network)]

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


# --- the models ---


class IpamPool(BaseModel):
    """One address pool of a network: a subnet, its gateway and its reservations."""

    model_config = _CONFIG

    subnet: AnyNetwork
    gateway: AnyAddress | None = None
    ip_range: AnyNetwork | None = None
    aux_addresses: dict[str, AnyAddress] = {}

    def effective_gateway(self) -> IPAddress:
        """The gateway, defaulting to the first usable address so it never shifts."""
        if self.gateway is not None:
            return self.gateway
        return self.subnet.network_address + 1


class NetworkSpec(BaseModel):
    """What a Network asks of its driver."""

    model_config = _CONFIG

    driver: DriverName = driver_names.DEFAULT
    bridge: str | None = None
    mtu: StrictInt | None = Field(default=None, ge=68, le=65535)
    internal: StrictBool = False
    icc: StrictBool = True
    masquerade: StrictBool = True
    #: What cnm does about a drop in another firewall's chain (docs/firewall.md): report
    #: it in the plan, or also keep its own marked accepts at the top of that chain.
    host_firewall: Literal["report", "accept"] = "report"
    ipam: list[IpamPool] = []
    parent: str | None = None
    mode: MacvlanMode | None = None
    #: overlay networks: the VXLAN network identifier (default: allocated once in the store)
    vni: StrictInt | None = Field(default=None, ge=1, le=16777215)

    @field_validator("driver", mode="before")
    @classmethod
    def _driver_from_yaml(cls, value: object) -> object:
        return driver_names.from_yaml(value)


class DnsConfig(BaseModel):
    """Contents of the sandbox's resolv.conf."""

    model_config = _CONFIG

    servers: list[AnyAddress] = []
    search: list[str] = []
    options: list[str] = []


class SandboxSpec(BaseModel):
    """A sandbox's namespace name and the files `ip netns exec` shows inside it."""

    model_config = _CONFIG

    netns: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    dns: DnsConfig | None = None
    extra_hosts: list[str] = []
    #: the host that realizes this sandbox (fleet placement); none: whichever host applies
    host: str | None = None


class PortMapping(BaseModel):
    """One published port: DNAT from hostIP:hostPort to the endpoint's containerPort."""

    model_config = _CONFIG

    container_port: StrictInt = Field(ge=1, le=65535)
    host_port: StrictInt = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: AnyAddress | None = None


class EndpointSpec(BaseModel):
    """Where an endpoint attaches (network), where it lives (sandbox) and how it looks."""

    model_config = _CONFIG

    network: str
    sandbox: str | None = None
    #: None: eth0, eth1, ... chosen by `reconciler/interface_defaults.py`
    ifname: str | None = None
    ipv4_address: V4Address | None = None
    ipv6_address: V6Address | None = None
    mac_address: str | None = Field(
        default=None, json_schema_extra={"pattern": _MAC_RE.pattern.replace("\\1", ":")}
    )
    aliases: list[str] = []
    #: None: chosen by gwPriority among the sandbox's non-internal endpoints
    gateway: StrictBool | None = None
    gw_priority: StrictInt = 0
    ports: list[PortMapping] = []

    @field_validator("mac_address", mode="before")
    @classmethod
    def _normalise_mac(cls, value: object) -> object:
        """Lowercase colon form, so that comparing with the kernel's view is plain equality."""
        if value is None:
            return None
        if not isinstance(value, str) or not _MAC_RE.match(value):
            raise ValueError(
                f"{show(value)} is not a MAC address (six hex octets, e.g. 02:42:0a:59:00:0a;"
                " quote it in YAML)"
            )
        mac = value.lower().replace("-", ":")
        if int(mac[:2], 16) & 1:
            raise ValueError(
                f"{mac} is a multicast MAC address; use a unicast one (even first octet,"
                " e.g. 02:42:0a:59:00:0a)"
            )
        if mac == "00:00:00:00:00:00":
            raise ValueError("00:00:00:00:00:00 is not a usable MAC address; omit macAddress")
        return mac


class Metadata(BaseModel):
    """Identity of an object: its name (unique per kind) and free-form labels."""

    model_config = _CONFIG

    name: str = Field(json_schema_extra={"pattern": naming.DNS_LABEL_RE.pattern, "maxLength": 63})
    labels: dict[str, str] = {}

    @field_validator("name", mode="before")
    @classmethod
    def _dns_label(cls, value: object) -> object:
        """Names become parts of kernel names and paths, so only DNS labels are allowed."""
        if not isinstance(value, str) or not naming.DNS_LABEL_RE.match(value):
            raise ValueError(
                f"{show(value)} is not a DNS label (lowercase letters, digits and '-', at most 63)"
            )
        return value


class Network(BaseModel):
    """A Network manifest."""

    model_config = _CONFIG

    api_version: Literal["cnm/v1"] = API_VERSION
    kind: Literal["Network"] = "Network"
    metadata: Metadata
    spec: NetworkSpec = Field(default_factory=NetworkSpec)

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.metadata.name)

    @property
    def bridge_name(self) -> str:
        """The kernel bridge: `spec.bridge`, else a stable name derived from this network only."""
        if self.spec.bridge is not None:
            return self.spec.bridge
        return naming.default_bridge_name(self.metadata.name)


class Sandbox(BaseModel):
    """A Sandbox manifest."""

    model_config = _CONFIG

    api_version: Literal["cnm/v1"] = API_VERSION
    kind: Literal["Sandbox"] = "Sandbox"
    metadata: Metadata
    spec: SandboxSpec = Field(default_factory=SandboxSpec)

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.metadata.name)

    @property
    def netns_name(self) -> str:
        """Name under /run/netns: `spec.netns`, else the sandbox's own name."""
        return self.spec.netns if self.spec.netns is not None else self.metadata.name

    @property
    def effective_hostname(self) -> str:
        return self.spec.hostname if self.spec.hostname is not None else self.metadata.name


class Endpoint(BaseModel):
    """An Endpoint manifest."""

    model_config = _CONFIG

    api_version: Literal["cnm/v1"] = API_VERSION
    kind: Literal["Endpoint"] = "Endpoint"
    metadata: Metadata
    spec: EndpointSpec

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.metadata.name)


Manifest: TypeAlias = Network | Sandbox | Endpoint
MODELS: Mapping[str, type[Network] | type[Sandbox] | type[Endpoint]] = MappingProxyType(
    {"Network": Network, "Sandbox": Sandbox, "Endpoint": Endpoint}
)


# --- the collection ---


@dataclass(frozen=True)
class ManifestSource:
    """Where an object was written: file, 1-based document index, line of its first key."""

    file: str
    document: int
    line: int | None


_UNKNOWN_SOURCE = ManifestSource("<unknown>", 0, None)


def _sorted_view(items: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(sorted(items.items())))


@dataclass(frozen=True)
class Manifests:
    """The desired objects, each kind keyed and sorted by name.

    `duplicates` keeps the objects that reused a name already taken in their
    kind (the first one wins in the mappings), so that `reconciler.validation.validate()` can report
    them instead of silently dropping them.
    """

    networks: Mapping[str, Network] = field(default_factory=dict)
    sandboxes: Mapping[str, Sandbox] = field(default_factory=dict)
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    sources: Mapping[ResourceKey, ManifestSource] = field(default_factory=dict)
    duplicates: tuple[tuple[Manifest, ManifestSource], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "networks", _sorted_view(self.networks))
        object.__setattr__(self, "sandboxes", _sorted_view(self.sandboxes))
        object.__setattr__(self, "endpoints", _sorted_view(self.endpoints))
        object.__setattr__(self, "sources", MappingProxyType(dict(sorted(
            self.sources.items(), key=item_order))))

    @classmethod
    def build(cls, objects: Sequence[tuple[Manifest, ManifestSource]]) -> Manifests:
        """Collect objects without validating them (the caller runs `validate`)."""
        tables: dict[str, dict[str, Any]] = {"Network": {}, "Sandbox": {}, "Endpoint": {}}
        sources: dict[ResourceKey, ManifestSource] = {}
        duplicates: list[tuple[Manifest, ManifestSource]] = []
        for obj, source in objects:
            table = tables[obj.kind]
            if obj.metadata.name in table:
                duplicates.append((obj, source))
                continue
            table[obj.metadata.name] = obj
            sources[obj.key] = source
        return cls(
            networks=tables["Network"],
            sandboxes=tables["Sandbox"],
            endpoints=tables["Endpoint"],
            sources=sources,
            duplicates=tuple(duplicates),
        )

    def is_empty(self) -> bool:
        return not (self.networks or self.sandboxes or self.endpoints)

    def objects(self) -> list[Manifest]:
        """Every object: networks, then sandboxes, then endpoints, each in name order."""
        return [*self.networks.values(), *self.sandboxes.values(), *self.endpoints.values()]

    def source_of(self, key: ResourceKey) -> ManifestSource:
        """Where `key` was written; a placeholder for objects this collection does not hold."""
        return self.sources.get(key, _UNKNOWN_SOURCE)

    def endpoints_of_network(self, name: str) -> list[Endpoint]:
        """Endpoints on network `name`, in name order (indexed once: validation asks per object)."""
        return list(self._by_network.get(name, ()))

    def endpoints_of_sandbox(self, name: str) -> list[Endpoint]:
        """Endpoints joined to sandbox `name`, in name order."""
        return list(self._by_sandbox.get(name, ()))

    @functools.cached_property
    def _by_network(self) -> dict[str, list[Endpoint]]:
        index: dict[str, list[Endpoint]] = {}
        for endpoint in self.endpoints.values():
            index.setdefault(endpoint.spec.network, []).append(endpoint)
        return index

    @functools.cached_property
    def _by_sandbox(self) -> dict[str, list[Endpoint]]:
        index: dict[str, list[Endpoint]] = {}
        for endpoint in self.endpoints.values():
            if endpoint.spec.sandbox is not None:
                index.setdefault(endpoint.spec.sandbox, []).append(endpoint)
        return index

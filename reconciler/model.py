"""The manifest model: what users write, as frozen pydantic objects.

The pydantic models check what one value alone can tell (types, ranges,
canonical subnets, DNS-label names, MAC syntax), so a loaded object is always
well-typed. Rules that need context (other objects, the kernel's name limits,
address plans) live in `reconciler.validation`; the JSON Schema for editors in
`reconciler.manifest_schema`; the collection of objects (`Manifests`) in
`reconciler.manifest_set`, which imports no pydantic.

Field names in messages are the camelCase names the user writes (`spec.ipam.0.ipRange`);
in Python the snake_case attribute names work too.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias

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
from reconciler.manifest_behaviour import (
    NetworkBehaviour,
    ObjectBehaviour,
    PoolBehaviour,
    SandboxBehaviour,
)
from reconciler.manifest_values import (
    ALIASES,
    API_VERSION,
    MAC_RE,
    IPAddress,
    IPNetwork,
    dns_label,
    normalise_mac,
    parse_address,
    parse_network,
    parse_v4,
    parse_v6,
)

__all__ = [
    "API_VERSION", "MODELS", "DnsConfig", "Endpoint", "EndpointSpec", "IPAddress", "IPNetwork",
    "IpamPool", "Manifest", "Metadata", "Network", "NetworkSpec",
    "PortMapping", "Sandbox", "SandboxSpec",
]

if TYPE_CHECKING:
    DriverName: TypeAlias = str
    MacvlanMode: TypeAlias = str
else:  # the registered drivers' names (drivers/names.py): a Literal of what is there
    DriverName = Literal[driver_names.NAMES]
    MacvlanMode = Literal[driver_names.MACVLAN_MODES]

def _alias(name: str) -> str:
    return ALIASES.get(name, name)


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


# One clear message per bad value (manifest_values.py) instead of one per union member.
AnyAddress = Annotated[IPAddress, BeforeValidator(parse_address)]
V4Address = Annotated[IPv4Address, BeforeValidator(parse_v4)]
V6Address = Annotated[IPv6Address, BeforeValidator(parse_v6)]
AnyNetwork = Annotated[IPNetwork, BeforeValidator(parse_network)]


# --- the models ---


class IpamPool(PoolBehaviour, BaseModel):
    """One address pool of a network: a subnet, its gateway and its reservations."""

    model_config = _CONFIG

    subnet: AnyNetwork
    gateway: AnyAddress | None = None
    ip_range: AnyNetwork | None = None
    aux_addresses: dict[str, AnyAddress] = {}


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
        default=None, json_schema_extra={"pattern": MAC_RE.pattern.replace("\\1", ":")}
    )
    aliases: list[str] = []
    #: None: chosen by gwPriority among the sandbox's non-internal endpoints
    gateway: StrictBool | None = None
    gw_priority: StrictInt = 0
    ports: list[PortMapping] = []

    @field_validator("mac_address", mode="before")
    @classmethod
    def _normalise_mac(cls, value: object) -> object:
        return normalise_mac(value)


class Metadata(BaseModel):
    """Identity of an object: its name (unique per kind) and free-form labels."""

    model_config = _CONFIG

    name: str = Field(json_schema_extra={"pattern": naming.DNS_LABEL_RE.pattern, "maxLength": 63})
    labels: dict[str, str] = {}

    @field_validator("name", mode="before")
    @classmethod
    def _dns_label(cls, value: object) -> object:
        return dns_label(value)


class Network(NetworkBehaviour, BaseModel):
    """A Network manifest."""

    model_config = _CONFIG

    api_version: Literal["cnm/v1"] = API_VERSION
    kind: Literal["Network"] = "Network"
    metadata: Metadata
    spec: NetworkSpec = Field(default_factory=NetworkSpec)


class Sandbox(SandboxBehaviour, BaseModel):
    """A Sandbox manifest."""

    model_config = _CONFIG

    api_version: Literal["cnm/v1"] = API_VERSION
    kind: Literal["Sandbox"] = "Sandbox"
    metadata: Metadata
    spec: SandboxSpec = Field(default_factory=SandboxSpec)


class Endpoint(ObjectBehaviour, BaseModel):
    """An Endpoint manifest."""

    model_config = _CONFIG

    api_version: Literal["cnm/v1"] = API_VERSION
    kind: Literal["Endpoint"] = "Endpoint"
    metadata: Metadata
    spec: EndpointSpec


Manifest: TypeAlias = Network | Sandbox | Endpoint
MODELS: Mapping[str, type[Network] | type[Sandbox] | type[Endpoint]] = MappingProxyType(
    {"Network": Network, "Sandbox": Sandbox, "Endpoint": Endpoint}
)

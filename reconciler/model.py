"""The manifest model: what users write, as frozen pydantic objects, plus cross-object rules.

Two layers, on purpose:

* the pydantic models check what one value alone can tell (types, ranges,
  canonical subnets, DNS-label names, MAC syntax), so a loaded object is
  always well-typed;
* `validate()` checks everything that needs context (other objects, the
  kernel's name limits, address plans). It returns `ManifestProblem`s instead
  of raising, so the loader can report every problem of every file at once,
  and the Python API can run the very same rules on objects it built itself.

Field names in messages are the camelCase names the user writes (`spec.ipam.0.ipRange`);
in Python the snake_case attribute names work too.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, TypeVar

from pydantic import (
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    field_validator,
)

from reconciler import naming
from reconciler.drivers import driver_for, network_problems
from reconciler.drivers import names as driver_names
from reconciler.errors import ManifestProblem
from reconciler.state import ResourceKey, item_order

API_VERSION: Literal["cnm/v1"] = "cnm/v1"
#: Longest hostname / domainname the kernel stores (__NEW_UTS_LEN).
UTS_NAME_MAX = 64
DNS_NAME_MAX = 253

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
        "ipv4_address": "ipv4Address",
        "ipv6_address": "ipv6Address",
        "mac_address": "macAddress",
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


def show(value: object, limit: int = 64) -> str:
    """A value as one short line for a message, in JSON spelling (strings double-quoted)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME_RE = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$")
_RESOLV_OPTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(?::[0-9]+)?$")


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
    ipam: list[IpamPool] = []
    parent: str | None = None
    mode: MacvlanMode | None = None

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
    ifname: str = "eth0"
    ipv4_address: V4Address | None = None
    ipv6_address: V6Address | None = None
    mac_address: str | None = Field(
        default=None, json_schema_extra={"pattern": _MAC_RE.pattern.replace("\\1", ":")}
    )
    aliases: list[str] = []
    gateway: StrictBool = True
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
    kind (the first one wins in the mappings), so that `validate()` can report
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


# --- cross-object validation ---


class _Reporter:
    """Collects problems, locating each at the line of its field when the loader knows it."""

    def __init__(
        self, manifests: Manifests, field_lines: Mapping[tuple[ResourceKey, str], int]
    ) -> None:
        self.manifests = manifests
        self.field_lines = field_lines
        self.problems: list[ManifestProblem] = []

    def line_of(self, key: ResourceKey, path: str) -> int | None:
        """Line of `path`, else of its nearest written parent, else of the document."""
        parts = path.split(".")
        while parts:
            line = self.field_lines.get((key, ".".join(parts)))
            if line is not None:
                return line
            parts.pop()
        return self.manifests.source_of(key).line

    def add(self, key: ResourceKey, path: str, message: str) -> None:
        source = self.manifests.source_of(key)
        self.problems.append(
            ManifestProblem(source.file, self.line_of(key, path), str(key), path, message)
        )


def validate(
    manifests: Manifests,
    *,
    field_lines: Mapping[tuple[ResourceKey, str], int] | None = None,
) -> list[ManifestProblem]:
    """Every rule that a single value cannot check alone; empty when the manifests are good.

    `field_lines` maps (object key, dotted camelCase path) to a line, so problems
    point at the offending field rather than at the document.
    """
    report = _Reporter(manifests, field_lines or {})
    _check_duplicates(report)
    for network in manifests.networks.values():
        _check_network(report, network)
    for sandbox in manifests.sandboxes.values():
        _check_sandbox(report, sandbox)
    for endpoint in manifests.endpoints.values():
        _check_endpoint(report, endpoint)
    for check in _CROSS_CHECKS:
        check(report)
    return report.problems


def _check_duplicates(report: _Reporter) -> None:
    for obj, source in report.manifests.duplicates:
        first = report.manifests.source_of(obj.key)
        where = first.file if first.line is None else f"{first.file}:{first.line}"
        report.problems.append(
            ManifestProblem(
                source.file,
                source.line,
                str(obj.key),
                "metadata.name",
                f"duplicate name: {obj.key} is already defined at {where}; "
                f"names must be unique per kind",
            )
        )


# --- one object at a time ---


def _check_network(report: _Reporter, network: Network) -> None:
    key, spec = network.key, network.spec
    for path, message in network_problems(network):
        report.add(key, path, message)
    for option in driver_for(spec.driver).interface_options:
        value = getattr(spec, option)
        if value is not None:
            _check_ifname(report, key, f"spec.{option}", value)
    if spec.bridge is not None:
        _check_ifname(report, key, "spec.bridge", spec.bridge)
    for index, pool in enumerate(spec.ipam):
        _check_pool(report, key, f"spec.ipam.{index}", pool)
    _check_overlaps_within(report, network)


def _check_ifname(report: _Reporter, key: ResourceKey, path: str, name: str) -> None:
    if not naming.is_valid_ifname(name):
        report.add(
            key,
            path,
            f"{show(name)} is not a valid interface name (1-{naming.IFNAMSIZ} characters: "
            "letters, digits, '_', '.' and '-')",
        )


def _first_host(subnet: IPNetwork) -> IPAddress:
    return subnet.network_address + 1


def _is_broadcast(address: IPAddress, subnet: IPNetwork) -> bool:
    return subnet.version == 4 and address == subnet.broadcast_address


def _inside(address: IPAddress, subnet: IPNetwork) -> bool:
    return address.version == subnet.version and address in subnet


def _check_pool(report: _Reporter, key: ResourceKey, base: str, pool: IpamPool) -> None:
    subnet = pool.subnet
    if subnet.prefixlen > subnet.max_prefixlen - 2:
        smallest = "/30" if subnet.version == 4 else "/126"
        report.add(
            key,
            f"{base}.subnet",
            f"subnet {subnet} has no room for a gateway and endpoints; use {smallest} or larger",
        )
        return
    if pool.gateway is not None:
        _check_gateway(report, key, f"{base}.gateway", pool.gateway, subnet)
    if pool.ip_range is not None and not (
        pool.ip_range.version == subnet.version and pool.ip_range.subnet_of(subnet)  # type: ignore[arg-type]
    ):
        report.add(
            key,
            f"{base}.ipRange",
            f"ipRange {pool.ip_range} is outside subnet {subnet}; use a range inside it",
        )
    for name, address in sorted(pool.aux_addresses.items()):
        if not _inside(address, subnet):
            report.add(
                key,
                f"{base}.auxAddresses.{name}",
                f"auxAddress {name}={address} is outside subnet {subnet}; use an address inside it",
            )


def _check_gateway(
    report: _Reporter, key: ResourceKey, path: str, gateway: IPAddress, subnet: IPNetwork
) -> None:
    hint = f"use a host address such as {_first_host(subnet)}"
    if not _inside(gateway, subnet):
        report.add(key, path, f"gateway {gateway} is outside subnet {subnet}; {hint}")
    elif gateway == subnet.network_address:
        report.add(key, path, f"gateway {gateway} is the network address of {subnet}; {hint}")
    elif _is_broadcast(gateway, subnet):
        report.add(key, path, f"gateway {gateway} is the broadcast address of {subnet}; {hint}")


def _check_overlaps_within(report: _Reporter, network: Network) -> None:
    pools = network.spec.ipam
    for later in range(len(pools)):
        for earlier in range(later):
            if _overlap(pools[earlier].subnet, pools[later].subnet):
                report.add(
                    network.key,
                    f"spec.ipam.{later}.subnet",
                    f"subnet {pools[later].subnet} overlaps subnet {pools[earlier].subnet} "
                    f"(spec.ipam.{earlier}) of the same network; subnets must not overlap",
                )
                break


def _overlap(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


def _check_sandbox(report: _Reporter, sandbox: Sandbox) -> None:
    key, spec = sandbox.key, sandbox.spec
    if spec.netns is not None and not naming.is_valid_netns_name(spec.netns):
        report.add(
            key,
            "spec.netns",
            f"{show(spec.netns)} is not a safe netns name (1-63 characters: letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-'; it becomes a path under /run/netns)",
        )
    for path, value in (("spec.hostname", spec.hostname), ("spec.domainname", spec.domainname)):
        if value is not None:
            _check_dns_name(report, key, path, value, UTS_NAME_MAX)
    if spec.dns is not None:
        _check_dns_config(report, key, spec.dns)
    for index, entry in enumerate(spec.extra_hosts):
        message = _extra_host_problem(entry)
        if message:
            report.add(key, f"spec.extraHosts.{index}", message)


def _dns_name_problem(value: str, limit: int = DNS_NAME_MAX) -> str | None:
    if not _DNS_NAME_RE.match(value):
        return (
            f"{show(value)} is not a valid DNS name (labels of letters, digits and '-', "
            "joined by '.', each at most 63 characters)"
        )
    if len(value) > limit:
        return f"{show(value)} is {len(value)} characters long; the limit is {limit}"
    return None


def _check_dns_name(
    report: _Reporter, key: ResourceKey, path: str, value: str, limit: int = DNS_NAME_MAX
) -> None:
    message = _dns_name_problem(value, limit)
    if message:
        report.add(key, path, message)


def _check_dns_config(report: _Reporter, key: ResourceKey, dns: DnsConfig) -> None:
    for index, domain in enumerate(dns.search):
        _check_dns_name(report, key, f"spec.dns.search.{index}", domain)
    for index, option in enumerate(dns.options):
        if not _RESOLV_OPTION_RE.match(option):
            report.add(
                key,
                f"spec.dns.options.{index}",
                f"{show(option)} is not a resolv.conf option (e.g. ndots:1, edns0, rotate)",
            )


def _extra_host_problem(entry: str) -> str | None:
    """`name:ip`; split at the first colon so IPv6 addresses need no brackets."""
    name, colon, address = entry.partition(":")
    if not colon:
        return f'{show(entry)} is not name:ip (e.g. "db.local:10.89.0.20")'
    problem = _dns_name_problem(name)
    if problem:
        return f"host name in {show(entry)}: {problem}"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return (
            f"{show(address)} in {show(entry)} is not an IP address "
            '(e.g. "db.local:10.89.0.20" or "db.local:fd00::20")'
        )
    return None


def _check_endpoint(report: _Reporter, endpoint: Endpoint) -> None:
    key, spec = endpoint.key, endpoint.spec
    manifests = report.manifests
    _check_reference(report, key, "spec.network", "Network", spec.network, manifests.networks)
    if spec.sandbox is not None:
        _check_reference(report, key, "spec.sandbox", "Sandbox", spec.sandbox, manifests.sandboxes)
    _check_ifname(report, key, "spec.ifname", spec.ifname)
    for index, alias in enumerate(spec.aliases):
        _check_dns_name(report, key, f"spec.aliases.{index}", alias)
    network = manifests.networks.get(spec.network)
    if network is None:
        return
    driver = driver_for(network.spec.driver)
    if driver.has_interfaces:
        for path, address in (
            ("spec.ipv4Address", spec.ipv4_address),
            ("spec.ipv6Address", spec.ipv6_address),
        ):
            if address is not None:
                _check_static_address(report, key, path, address, network)
    for path, message in driver.check_endpoint(endpoint, network):
        report.add(key, path, message)
    if driver.publishes_ports:
        _check_ports(report, endpoint, network)


def _check_ports(report: _Reporter, endpoint: Endpoint, network: Network) -> None:
    """Published ports must be reachable: not on internal networks, hostIP a usable
    unicast address of a family the network has a pool of."""
    families = _families(network) or {4}  # no ipam: a default pool, which is IPv4
    for index, port in enumerate(endpoint.spec.ports):
        if network.spec.internal:
            report.add(
                endpoint.key,
                f"spec.ports.{index}",
                f"{network.key} is internal (no traffic enters or leaves it), so ports cannot be "
                "published from it; remove spec.ports or use a network that is not internal",
            )
            continue
        host_ip = port.host_ip
        if host_ip is None:
            continue
        path = f"spec.ports.{index}.hostIP"
        if host_ip.is_loopback:
            report.add(
                endpoint.key,
                path,
                f"{host_ip} is a loopback address: cnm does not forward loopback traffic into "
                "sandboxes (that needs route_localnet); use another address of this host",
            )
        elif host_ip.is_multicast or host_ip.is_link_local or (
            host_ip.version == 4 and int(host_ip) == 0xFFFFFFFF
        ):
            report.add(
                endpoint.key,
                path,
                f"{host_ip} cannot receive published traffic; use an address of this host, "
                f"or {'0.0.0.0' if host_ip.version == 4 else '::'} for all of them",
            )
        elif host_ip.version not in families:
            report.add(
                endpoint.key,
                path,
                f"{host_ip} is an IPv{host_ip.version} address but {network.key} has no "
                f"IPv{host_ip.version} pool, so the endpoint has no address to forward to",
            )


def _check_reference(
    report: _Reporter,
    key: ResourceKey,
    path: str,
    kind: str,
    name: str,
    known: Mapping[str, object],
) -> None:
    if name in known:
        return
    names = list(known)
    listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    hint = f"known: {listed}" if names else f"no {kind} is defined"
    message = f"unknown {kind.lower()} {show(name)}; define a {kind} of that name ({hint})"
    report.add(key, path, message)


def _check_static_address(
    report: _Reporter, key: ResourceKey, path: str, address: IPAddress, network: Network
) -> None:
    family = f"IPv{address.version}"
    pools = [p for p in network.spec.ipam if p.subnet.version == address.version]
    pool = next((p for p in pools if address in p.subnet), None)
    if not pools:
        report.add(
            key,
            path,
            f"{address} cannot be used: {network.key} has no {family} pool "
            f"(add one to its spec.ipam, or remove {path.split('.')[-1]})",
        )
        return
    if pool is None:
        subnets = ", ".join(str(p.subnet) for p in pools)
        report.add(
            key,
            path,
            f"{address} is not inside an {family} pool of {network.key} (subnets: {subnets})",
        )
        return
    message = _reservation_problem(address, pool, network)
    if message:
        report.add(key, path, message)


def _reservation_problem(address: IPAddress, pool: IpamPool, network: Network) -> str | None:
    """Why a static address collides with something the network keeps for itself."""
    subnet = pool.subnet
    if address == pool.effective_gateway():
        return f"{address} is the gateway of {network.key}; pick another address"
    for other in network.spec.ipam:
        for name, reserved in sorted(other.aux_addresses.items()):
            if reserved == address:
                return (
                    f"{address} is reserved by auxAddresses.{name} of {network.key}; "
                    "pick another address"
                )
    if address == subnet.network_address:
        return f"{address} is the network address of {subnet}; pick a host address"
    if _is_broadcast(address, subnet):
        return f"{address} is the broadcast address of {subnet}; pick a host address"
    return None


# --- rules across objects ---


_Named = TypeVar("_Named", Network, Sandbox)


def _pick_culprit(
    first: _Named, second: _Named, explicit: Callable[[_Named], bool]
) -> tuple[_Named, _Named]:
    """Blame the object that chose the clashing name itself; else the later one."""
    if not explicit(second) and explicit(first):
        return first, second
    return second, first


def _check_subnet_overlaps(report: _Reporter) -> None:
    seen: list[tuple[Network, int, IPNetwork]] = []
    for network in report.manifests.networks.values():
        mine = [(network, i, pool.subnet) for i, pool in enumerate(network.spec.ipam)]
        for _, index, subnet in mine:
            clash = next((s for s in seen if _overlap(s[2], subnet)), None)
            if clash is not None:
                report.add(
                    network.key,
                    f"spec.ipam.{index}.subnet",
                    f"subnet {subnet} overlaps subnet {clash[2]} of {clash[0].key} "
                    f"(spec.ipam.{clash[1]}); pick a subnet that does not overlap",
                )
        seen += mine


def _check_host_sandboxes(report: _Reporter) -> None:
    """A sandbox on a host network is the host namespace itself: it cannot join others."""
    networks = report.manifests.networks
    for sandbox in report.manifests.sandboxes.values():
        joined = report.manifests.endpoints_of_sandbox(sandbox.metadata.name)
        shares_host = {
            e.metadata.name: driver_for(networks[e.spec.network].spec.driver)
            .shares_host_namespace
            for e in joined if e.spec.network in networks
        }
        if any(shares_host.values()) and len(shares_host) > 1:
            others = sorted(name for name, shares in shares_host.items() if not shares)
            hosts = sorted(name for name, shares in shares_host.items() if shares)
            culprit = report.manifests.endpoints[(others or hosts[1:])[0]]
            report.add(culprit.key, "spec.sandbox",
                       f"{sandbox.key} joins a host network (Endpoint/{hosts[0]}), so it is the "
                       "host namespace and cannot join other networks; use another sandbox")


def _check_bridge_names(report: _Reporter) -> None:
    """Two networks cannot be the same host link (two bridges of one name)."""
    owners: dict[str, Network] = {}
    for network in report.manifests.networks.values():
        link = driver_for(network.spec.driver).network_link_name(network)
        if link is None:
            continue
        first = owners.setdefault(link, network)
        if first is network:
            continue
        culprit, other = _pick_culprit(first, network, lambda n: n.spec.bridge is not None)
        report.add(
            culprit.key,
            "spec.bridge",
            f"bridge name {link} is also used by {other.key}; set a distinct spec.bridge",
        )


def _check_netns_names(report: _Reporter) -> None:
    owners: dict[str, Sandbox] = {}
    for sandbox in report.manifests.sandboxes.values():
        first = owners.setdefault(sandbox.netns_name, sandbox)
        if first is sandbox:
            continue
        culprit, other = _pick_culprit(first, sandbox, lambda s: s.spec.netns is not None)
        report.add(
            culprit.key,
            "spec.netns",
            f"netns name {sandbox.netns_name} is also used by {other.key}; "
            "set a distinct spec.netns",
        )


def _check_duplicate_addresses(report: _Reporter) -> None:
    for name in report.manifests.networks:
        holders: dict[IPAddress, Endpoint] = {}
        for endpoint in report.manifests.endpoints_of_network(name):
            spec = endpoint.spec
            for path, address in (
                ("spec.ipv4Address", spec.ipv4_address),
                ("spec.ipv6Address", spec.ipv6_address),
            ):
                if address is None:
                    continue
                first = holders.setdefault(address, endpoint)
                if first is not endpoint:
                    report.add(
                        endpoint.key,
                        path,
                        f"{address} is already used by {first.key} on Network/{name}; "
                        "pick another address",
                    )


def _host_ips_overlap(a: IPAddress | None, b: IPAddress | None) -> bool:
    """No hostIP means every address of both families; 0.0.0.0 / :: every one of its family."""
    if a is None or b is None:
        return True
    if a.version != b.version:
        return False
    return a == b or a.is_unspecified or b.is_unspecified


def _check_host_ports(report: _Reporter) -> None:
    published: dict[tuple[str, int], list[tuple[Endpoint, int, PortMapping]]] = defaultdict(list)
    for endpoint in report.manifests.endpoints.values():
        for index, port in enumerate(endpoint.spec.ports):
            earlier = published[(port.protocol, port.host_port)]
            clashes = (e for e in earlier if _host_ips_overlap(e[2].host_ip, port.host_ip))
            clash = next(clashes, None)
            if clash is not None:
                where = "all addresses" if port.host_ip is None else str(port.host_ip)
                report.add(
                    endpoint.key,
                    f"spec.ports.{index}.hostPort",
                    f"host port {port.protocol}/{port.host_port} on {where} is already published "
                    f"by {clash[0].key} (spec.ports.{clash[1]}); pick another hostPort or hostIP",
                )
            earlier.append((endpoint, index, port))


def _check_ifnames_in_sandbox(report: _Reporter) -> None:
    for name in report.manifests.sandboxes:
        holders: dict[str, Endpoint] = {}
        for endpoint in report.manifests.endpoints_of_sandbox(name):
            first = holders.setdefault(endpoint.spec.ifname, endpoint)
            if first is not endpoint:
                report.add(
                    endpoint.key,
                    "spec.ifname",
                    f"ifname {endpoint.spec.ifname} is already used in Sandbox/{name} by "
                    f"{first.key}; set a distinct spec.ifname",
                )


def _families(network: Network | None) -> set[int]:
    return set() if network is None else {p.subnet.version for p in network.spec.ipam}


def _check_gateways(report: _Reporter) -> None:
    manifests = report.manifests
    for name in manifests.sandboxes:
        carriers: dict[int, Endpoint] = {}
        for endpoint in manifests.endpoints_of_sandbox(name):
            if not endpoint.spec.gateway:
                continue
            for version in sorted(_families(manifests.networks.get(endpoint.spec.network))):
                first = carriers.setdefault(version, endpoint)
                if first is not endpoint:
                    report.add(
                        endpoint.key,
                        "spec.gateway",
                        f"{first.key} already carries the IPv{version} default route of "
                        f"Sandbox/{name}; set gateway: false on all but one of its endpoints",
                    )


_CROSS_CHECKS: tuple[Callable[[_Reporter], None], ...] = (
    _check_subnet_overlaps,
    _check_bridge_names,
    _check_netns_names,
    _check_duplicate_addresses,
    _check_host_ports,
    _check_ifnames_in_sandbox,
    _check_gateways,
    _check_host_sandboxes,
)


# --- JSON Schema ---


def json_schema() -> dict[str, Any]:
    """One JSON Schema (draft 2020-12) for any manifest document, for editors and `cnm schema`.

    Python defaults `apiVersion` and `kind` for convenience, but a YAML document
    must spell them out, so the schema lists them as required.
    """
    adapter: TypeAdapter[Manifest] = TypeAdapter(
        Annotated[Network | Sandbox | Endpoint, Field(discriminator="kind")]
    )
    schema = adapter.json_schema(by_alias=True, mode="validation")
    for kind in MODELS:
        definition = schema["$defs"][kind]
        required = ["apiVersion", "kind", "metadata"]
        if "spec" in definition.get("required", []):
            required.append("spec")
        definition["required"] = required
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cnm manifest (cnm/v1)",
        **schema,
    }

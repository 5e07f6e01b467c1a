"""The key layout under the store's prefix (default `/cnm/v1/`), pure.

    {prefix}vni/{network}                         → "4097"            the network's VNI
    {prefix}vni-owner/{vni}                       → "{network}"       makes a VNI unique
    {prefix}address/{network}/{address}           → {"host","set","endpoint"}  one per held address
    {prefix}member/{network}/{host}               → {"vtep"}          the host's VTEP on the network
    {prefix}endpoint/{network}/{host}/{set}/{ep}  → {"mac","ipv4","ipv6"}
    {prefix}alive/{host}                          → {"vtep"}          attached to the host's lease
    {prefix}host/{host}                           → {"vtep"}          it has had a lease (stays)

Values are JSON objects (a VNI and its owner are plain text). Addresses are
bare (no prefix length), in canonical text (`ipaddress`'s). Names that may
contain the separator are refused (`KeyPartError`): a `/` in a host, set or
network name would make keys ambiguous.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping

from ..errors import CnmError
from .records import ClusterView, EndpointRecord, Holder, HostRecord, Member

VNI = "vni/"
VNI_OWNER = "vni-owner/"
ADDRESS = "address/"
MEMBER = "member/"
ENDPOINT = "endpoint/"
ALIVE = "alive/"
HOST = "host/"


class KeyPartError(CnmError):
    """A name cannot be part of a store key (empty, or holds '/')."""


def part(what: str, name: str) -> str:
    """`name` checked to be one key segment."""
    if not name or "/" in name or name in (".", ".."):
        raise KeyPartError(f"{what} {name!r} cannot be part of a store key")
    return name


def canonical_address(address: str) -> str:
    """An address in one spelling, so two hosts never claim `::1` and `0::1` apart."""
    return str(ipaddress.ip_address(address.split("/", 1)[0]))


def vni_key(prefix: str, network: str) -> str:
    return f"{prefix}{VNI}{part('network', network)}"


def vni_owner_key(prefix: str, vni: int) -> str:
    return f"{prefix}{VNI_OWNER}{vni}"


def address_key(prefix: str, network: str, address: str) -> str:
    return f"{prefix}{ADDRESS}{part('network', network)}/{canonical_address(address)}"


def member_key(prefix: str, network: str, host: str) -> str:
    return f"{prefix}{MEMBER}{part('network', network)}/{part('host', host)}"


def endpoint_key(prefix: str, network: str, host: str, set_: str, endpoint: str) -> str:
    return (f"{prefix}{ENDPOINT}{part('network', network)}/{part('host', host)}/"
            f"{part('set', set_)}/{part('endpoint', endpoint)}")


def alive_key(prefix: str, host: str) -> str:
    return f"{prefix}{ALIVE}{part('host', host)}"


def host_key(prefix: str, host: str) -> str:
    return f"{prefix}{HOST}{part('host', host)}"


def encode(value: Mapping[str, object]) -> str:
    """A record's value: compact JSON with sorted keys (same record, same bytes)."""
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))


def _json(value: str) -> dict[str, object]:
    try:
        decoded = json.loads(value)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def decode_view(prefix: str, revision: int, items: Iterable[tuple[str, str]]) -> ClusterView:
    """Every (key, value) under `prefix` → a `ClusterView` at `revision`.

    Keys that fit no part of the layout, or values that are not what the
    layout says, are skipped: a newer cnm may have written them.
    """
    vnis: dict[str, int] = {}
    members: list[Member] = []
    endpoints: list[EndpointRecord] = []
    addresses: dict[tuple[str, str], Holder] = {}
    alive: dict[str, str | None] = {}
    watched: dict[str, str | None] = {}
    for key, value in items:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        kind, _, tail = rest.partition("/")
        parts = tail.split("/")
        if kind + "/" == VNI and len(parts) == 1 and value.isdigit():
            vnis[parts[0]] = int(value)
        elif kind + "/" == ADDRESS and len(parts) == 2:
            data = _json(value)
            host, set_, ep = data.get("host"), data.get("set"), data.get("endpoint")
            if isinstance(host, str) and isinstance(set_, str) and isinstance(ep, str):
                addresses[(parts[0], parts[1])] = Holder(host, set_, ep)
        elif kind + "/" == MEMBER and len(parts) == 2:
            vtep = _text(_json(value).get("vtep"))
            if vtep:
                members.append(Member(parts[0], parts[1], vtep))
        elif kind + "/" == ENDPOINT and len(parts) == 4:
            data = _json(value)
            mac = _text(data.get("mac"))
            if mac:
                endpoints.append(EndpointRecord(parts[0], parts[1], parts[2], parts[3], mac,
                                                _text(data.get("ipv4")), _text(data.get("ipv6"))))
        elif kind + "/" == ALIVE and len(parts) == 1:
            alive[parts[0]] = _text(_json(value).get("vtep"))
        elif kind + "/" == HOST and len(parts) == 1:
            watched[parts[0]] = _text(_json(value).get("vtep"))
    vteps: dict[str, str | None] = {}
    for member in sorted(members):
        vteps.setdefault(member.host, member.vtep)
    names = (set(vteps) | set(alive) | set(watched) | {e.host for e in endpoints}
             | {h.host for h in addresses.values()})
    hosts = tuple(HostRecord(name, alive.get(name) or vteps.get(name) or watched.get(name),
                             name in alive, name in alive or name in watched)
                  for name in sorted(names))
    return ClusterView(revision=revision, vnis=vnis, members=tuple(sorted(members)),
                       endpoints=tuple(sorted(endpoints)),
                       addresses=dict(sorted(addresses.items())), hosts=hosts)


def decode_holder_host(value: str) -> str | None:
    """The host an address key's value names (None if it names none)."""
    return _text(_json(value).get("host"))

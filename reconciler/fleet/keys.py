"""The key layout under the store's prefix (default `/cnm/v1/`), pure.

    {prefix}vni/{network}                         → "4097"            the network's VNI
    {prefix}vni-owner/{vni}                       → "{network}"       makes a VNI unique
    {prefix}address/{network}/{address}           → {"host","set","endpoint"}  one per held address
    {prefix}member/{network}/{host}               → {"vtep"}          the host's VTEP on the network
    {prefix}endpoint/{network}/{host}/{set}/{ep}  → {"mac","ipv4","ipv6"}
    {prefix}alive/{host}                          → {"vtep"}          attached to the host's lease

Values are JSON objects (a VNI and its owner are plain text). Addresses are
bare (no prefix length), in canonical text (`ipaddress`'s). Names that may
contain the separator are refused (`KeyPartError`): a `/` in a host, set or
network name would make keys ambiguous.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping

from ..errors import CnmError

VNI = "vni/"
VNI_OWNER = "vni-owner/"
ADDRESS = "address/"
MEMBER = "member/"
ENDPOINT = "endpoint/"
ALIVE = "alive/"


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


def encode(value: Mapping[str, object]) -> str:
    """A record's value: compact JSON with sorted keys (same record, same bytes)."""
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))

"""What the cluster store holds, as pure frozen values (no I/O).

`parse_store_url` turns the user's `--store etcd://IP:PORT[,IP:PORT...]` into
a `StoreConfig`; `ClusterView` is one consistent snapshot of everything under
the prefix, at one etcd revision, as `ClusterStore.read()` returns it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from ..errors import CnmError

DEFAULT_PREFIX = "/cnm/v1/"
SCHEME = "etcd://"


class StoreUrlError(CnmError):
    """`--store` is not `etcd://IP:PORT[,IP:PORT...]`: the user's fault."""


@dataclass(frozen=True)
class StoreConfig:
    """Where the store is and how to reach it.

    `endpoints` are `host:port` texts (IPv6 hosts in brackets), tried in
    order; `ca`, `cert`, `key` are PEM file paths. With `ca` the connection
    is TLS (https to etcd), verified against that CA; `cert`/`key` add a
    client certificate.
    """

    endpoints: tuple[str, ...]
    prefix: str = DEFAULT_PREFIX
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def tls(self) -> bool:
        return self.ca is not None or self.cert is not None

    @property
    def url(self) -> str:
        """The store as the user names it (`etcd://a:2379,b:2379`), for messages."""
        return SCHEME + ",".join(self.endpoints)


def _endpoint(text: str, url: str) -> str:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise StoreUrlError(f"--store {url}: {text!r} is not IP:PORT")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        raise StoreUrlError(f"--store {url}: {host!r} is not an IP address") from None
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"{shown}:{int(port_text)}"


def parse_store_url(
    url: str, ca: str | None = None, cert: str | None = None, key: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> StoreConfig:
    """`etcd://IP:PORT[,IP:PORT...]` (IPv6 as `[addr]:port`) → `StoreConfig`.

    Raises `StoreUrlError` (one line naming `--store` and what is wrong).
    A client `cert` needs its `key` and the other way round.
    """
    if not url.startswith(SCHEME):
        raise StoreUrlError(f"--store {url}: expected etcd://IP:PORT[,IP:PORT...]")
    rest = url[len(SCHEME):].rstrip("/")
    if not rest:
        raise StoreUrlError(f"--store {url}: no endpoint")
    endpoints = tuple(_endpoint(part, url) for part in rest.split(","))
    if (cert is None) != (key is None):
        raise StoreUrlError(f"--store {url}: --store-cert and --store-key go together")
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise StoreUrlError(f"store prefix {prefix!r} must start and end with '/'")
    return StoreConfig(endpoints=endpoints, prefix=prefix, ca=ca, cert=cert, key=key)


@dataclass(frozen=True, order=True)
class Holder:
    """Who holds an address: an endpoint of a set, on a host."""

    host: str
    set: str
    endpoint: str


@dataclass(frozen=True, order=True)
class Member:
    """A host taking part in an overlay network, with its VTEP address."""

    network: str
    host: str
    vtep: str


@dataclass(frozen=True, order=True)
class EndpointRecord:
    """An endpoint as its peers program it: where it lives, its MAC and addresses.

    `ipv4`/`ipv6` are bare addresses (no prefix length), or None.
    """

    network: str
    host: str
    set: str
    endpoint: str
    mac: str
    ipv4: str | None = None
    ipv6: str | None = None


@dataclass(frozen=True, order=True)
class HostRecord:
    """A host the store knows of; `alive` while its liveness lease is kept.

    `watched`: the host has kept a lease at some time (ran `cnm watch`), so
    `alive=False` means its lease expired rather than that it never had one.
    """

    host: str
    vtep: str | None
    alive: bool
    watched: bool = False

    @property
    def lease(self) -> str:
        """The lease's state in one word: alive, expired or none."""
        return "alive" if self.alive else "expired" if self.watched else "none"


@dataclass(frozen=True)
class StoreChanges:
    """What one host's settle writes to the store, as one batch (`ClusterStore.apply_changes`).

    `withdrawn_endpoints`: (network, host, set, endpoint) of records to remove;
    `released`: (network, address, holder) of claims to free if still the holder's;
    `withdrawn_members`: (network, host) of memberships to remove.
    """

    members: tuple[Member, ...] = ()
    endpoints: tuple[EndpointRecord, ...] = ()
    withdrawn_endpoints: tuple[tuple[str, str, str, str], ...] = ()
    released: tuple[tuple[str, str, Holder], ...] = ()
    withdrawn_members: tuple[tuple[str, str], ...] = ()

    @property
    def count(self) -> int:
        """The keys this batch writes or removes."""
        return (len(self.members) + len(self.endpoints) + len(self.withdrawn_endpoints)
                + len(self.released) + len(self.withdrawn_members))


K = TypeVar("K")
V = TypeVar("V")


def _frozen_map(value: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class ClusterView:
    """Everything under the prefix at one etcd `revision`, sorted.

    `addresses` maps (network, bare address) to its holder. `hosts` names
    every host with membership, endpoints, addresses or a liveness key;
    `alive` says whether its liveness key (lease) exists.
    """

    revision: int
    vnis: Mapping[str, int] = field(default_factory=dict)
    members: tuple[Member, ...] = ()
    endpoints: tuple[EndpointRecord, ...] = ()
    addresses: Mapping[tuple[str, str], Holder] = field(default_factory=dict)
    hosts: tuple[HostRecord, ...] = ()

    def __post_init__(self) -> None:
        # Read-only mappings: a view is a snapshot, shared between threads.
        object.__setattr__(self, "vnis", _frozen_map(self.vnis))
        object.__setattr__(self, "addresses", _frozen_map(self.addresses))

    def members_of(self, network: str) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.network == network)

    def endpoints_of(self, network: str) -> tuple[EndpointRecord, ...]:
        return tuple(e for e in self.endpoints if e.network == network)

    def held_by(self, host: str) -> dict[tuple[str, str], Holder]:
        """The addresses `host` holds, as (network, address) → holder."""
        return {k: h for k, h in self.addresses.items() if h.host == host}

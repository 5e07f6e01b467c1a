"""`ClusterStore`: the cluster's shared facts in etcd v3, under one prefix.

Every write that must not race (an address, a VNI) is one etcd transaction
that compares the key's create revision with 0 ("does not exist") before it
puts, so two hosts racing for one address get one winner. Reads are one range
read of the whole prefix (`read()`), so a plan costs O(1) round trips however
many endpoints the cluster has. A store opened with `read_only=True` (what
`cnm plan` uses) raises `StoreReadOnly` on any write, before any request.

Errors reaching etcd (refused, timed out, TLS) are `StoreUnavailable`: one
line naming the store URL and the error. Key layout: `keys.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from ..errors import CnmError, ConflictError
from .records import ClusterView, EndpointRecord, Holder, Member, StoreConfig


class StoreUnavailable(CnmError):
    """The store cannot be reached or answered with an error; retrying may help."""

    retryable = True

    def __init__(self, url: str, error: str) -> None:
        super().__init__(f"store {url}: {error}")
        self.url = url
        self.error = error


class StoreReadOnly(CnmError):
    """A write was asked of a store opened read-only (a bug: `plan` never writes)."""


class VniTaken(ConflictError):
    """The VNI a manifest asks for is already another network's."""


class Lease:
    """A host's liveness key, kept while its lease is refreshed.

    `refresh()` renews it (call it well within `ttl`); `revoke()` ends it and
    removes the key at once. Once the lease expires, `cluster status` shows
    the host as not alive; nothing it holds is released by that.
    """

    def __init__(self, store: ClusterStore, lease_id: int, ttl: int) -> None:
        self.store = store
        self.id = lease_id
        self.ttl = ttl

    def refresh(self) -> None:
        """Renew the lease for another `ttl` seconds; `StoreUnavailable` on failure."""
        raise NotImplementedError

    def revoke(self) -> None:
        """End the lease and delete its liveness key."""
        raise NotImplementedError


class ClusterStore:
    """One connection to etcd, scoped to `config.prefix`. Thread-compatible, not shared."""

    def __init__(self, config: StoreConfig, *, read_only: bool = False) -> None:
        self.config = config
        self.read_only = read_only

    @classmethod
    def open(cls, config: StoreConfig, *, read_only: bool = False) -> ClusterStore:
        """Connect and check the store answers (one request); `StoreUnavailable` if not."""
        raise NotImplementedError

    def __enter__(self) -> ClusterStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- reading -----------------------------------------------------------------

    def read(self) -> ClusterView:
        """Everything under the prefix at one revision: one range read."""
        raise NotImplementedError

    def watch(self, from_revision: int, tick: float = 1.0) -> Iterator[ClusterView | None]:
        """After each change under the prefix past `from_revision`, a fresh view.

        Yields None after `tick` seconds without a change, so the caller can
        check whether to stop. Changes close together may come as one view.
        Raises `StoreUnavailable` when the store goes away (the caller retries
        with backoff and calls `watch` again from the last revision it saw).
        """
        raise NotImplementedError

    # --- addresses -----------------------------------------------------------------

    def claim_address(self, network: str, address: str, holder: Holder) -> bool:
        """Claim `address` on `network` for `holder` in one transaction.

        True when `holder` now holds it (also when it already did), False
        when someone else does. Never overwrites another holder's claim.
        """
        raise NotImplementedError

    def release_address(self, network: str, address: str, holder: Holder) -> bool:
        """Delete the claim only if `holder` holds it; True when it was deleted."""
        raise NotImplementedError

    # --- VNIs ----------------------------------------------------------------------

    def claim_vni(self, network: str, wanted: int | None = None) -> int:
        """The network's VNI: the one it has, else `wanted`, else the lowest free from 4096.

        Allocated once per network name and stable afterwards. `VniTaken`
        when `wanted` is another network's, or differs from the VNI this
        network already has.
        """
        raise NotImplementedError

    # --- membership and endpoints ---------------------------------------------------

    def publish_member(self, member: Member) -> None:
        """Record that `member.host` takes part in `member.network` at `member.vtep`."""
        raise NotImplementedError

    def withdraw_member(self, network: str, host: str) -> None:
        """Remove the host's membership of the network (absent: nothing to do)."""
        raise NotImplementedError

    def publish_endpoint(self, record: EndpointRecord) -> None:
        """Record an endpoint's MAC and addresses for its peers."""
        raise NotImplementedError

    def withdraw_endpoint(self, network: str, host: str, set_: str, endpoint: str) -> None:
        """Remove an endpoint's record (absent: nothing to do)."""
        raise NotImplementedError

    # --- liveness and cleanup ---------------------------------------------------------

    def keep_alive(self, host: str, vtep: str | None, ttl: int) -> Lease:
        """Grant a lease of `ttl` seconds and put the host's liveness key on it."""
        raise NotImplementedError

    def forget(self, host: str) -> int:
        """Release everything `host` holds (addresses, membership, endpoints, liveness).

        For `cnm cluster forget`: the only way a lost host's allocations are
        freed by someone else. Returns the number of keys removed.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Drop the connection (idempotent)."""

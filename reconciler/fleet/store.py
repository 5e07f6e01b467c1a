"""`ClusterStore`: the cluster's shared facts in etcd v3, under one prefix.

Every write that must not race (an address, a VNI) is made by an etcd
transaction that compares the key's create revision with 0 ("does not
exist") before it puts, so two hosts racing for one address get one winner.
Many such writes go in one transaction of up to `TXN_OPS` keys, each key
keeping its own verdict (txn.py): an apply claiming 300 addresses makes three
round trips, not 300, and publishes its records the same way. Reads are one range
read of the whole prefix (`read()`), so a plan costs O(1) round trips however
many endpoints the cluster has. A store opened with `read_only=True` (what
`cnm plan` uses) raises `StoreReadOnly` on any write, before any request.

Errors reaching etcd (refused, timed out, TLS) are `StoreUnavailable`: one
line naming the store URL and the error. Key layout: `keys.py`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from ..errors import CnmError, ConflictError
from . import keys
from .gateway import Gateway, GatewayError, Stream, TlsFilesError, b64, prefix_end
from .records import ClusterView, EndpointRecord, Holder, Member, StoreChanges, StoreConfig
from .txn import (
    Op,
    UnexpectedReply,
    Verdict,
    created,
    delete,
    deleted,
    each_if,
    kvs,
    not_exists,
    put,
    value_is,
    write_all,
)

#: VNIs handed out when a manifest names none: libnetwork's overlay range
FIRST_VNI = 4096
LAST_VNI = (1 << 24) - 1


class StoreUnavailable(CnmError):
    """The store cannot be reached or answered with an error; retrying may help."""

    retryable = True

    def __init__(self, url: str, error: str) -> None:
        super().__init__(f"store {url}: {error}")
        self.url = url
        self.error = error


class StoreTlsError(CnmError):
    """A TLS file given for the store cannot be read or used: the user's to fix."""


class StoreReadOnly(CnmError):
    """A write was asked of a store opened read-only (a bug: `plan` never writes)."""


class VniTaken(ConflictError):
    """The VNI a manifest asks for is already another network's."""


def _absent(key: str, _value: str) -> Op:
    return not_exists(key)


def _delete(key: str, _value: str) -> Op:
    return delete(key)


def _holder_value(holder: Holder) -> str:
    return keys.encode({"host": holder.host, "set": holder.set, "endpoint": holder.endpoint})


class Lease:
    """A host's liveness key, kept while its lease is refreshed.

    `refresh()` renews it (call it well within `ttl`); after the lease
    expired (the store was away longer than `ttl`) it grants a new one and
    puts the key again. `revoke()` ends it and removes the key at once. Once
    the lease expires, `cluster status` shows the host as not alive; nothing
    it holds is released by that.
    """

    def __init__(self, store: ClusterStore, host: str, value: str, ttl: int) -> None:
        self.store = store
        self.key = keys.alive_key(store.config.prefix, host)
        self.value = value
        self.ttl = ttl
        self.id = 0
        self._grant()

    def _grant(self) -> None:
        reply = self.store._call("lease/grant", {"TTL": str(self.ttl)})
        self.id = int(reply["ID"])
        self.store._call("kv/put", {"key": b64(self.key), "value": b64(self.value),
                                    "lease": str(self.id)})

    def refresh(self) -> None:
        """Renew the lease for another `ttl` seconds; `StoreUnavailable` on failure."""
        try:
            stream = self.store.gateway.stream("lease/keepalive", {"ID": str(self.id)},
                                               read_timeout=5.0)
            replies = list(stream.lines())
        except GatewayError as exc:
            raise self.store._unavailable(exc) from None
        ttl = max((int(r.get("result", {}).get("TTL", 0)) for r in replies), default=0)
        if ttl <= 0:  # expired while the store was away: come back as alive
            self._grant()

    def revoke(self) -> None:
        """End the lease and delete its liveness key."""
        self.store._call("lease/revoke", {"ID": str(self.id)})


class ClusterStore:
    """One connection pool to etcd, scoped to `config.prefix`."""

    def __init__(self, config: StoreConfig, *, read_only: bool = False) -> None:
        self.config = config
        self.read_only = read_only
        try:
            self.gateway = Gateway(config)
        except TlsFilesError as exc:
            raise StoreTlsError(f"store {config.url}: {exc}") from None
        self.round_trips = 0  # requests made; benchmarks check a plan's stay O(1)

    @classmethod
    def open(cls, config: StoreConfig, *, read_only: bool = False) -> ClusterStore:
        """Connect and check the store answers (one request); `StoreUnavailable` if not."""
        store = cls(config, read_only=read_only)
        store._call("kv/range", {"key": b64(config.prefix), "range_end":
                                 b64(prefix_end(config.prefix)), "count_only": True})
        return store

    def __enter__(self) -> ClusterStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------

    def _unavailable(self, exc: GatewayError) -> StoreUnavailable:
        return StoreUnavailable(self.config.url, exc.reason)

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.round_trips += 1
        try:
            return self.gateway.call(path, body)
        except GatewayError as exc:
            raise self._unavailable(exc) from None

    def _writing(self, what: str) -> None:
        if self.read_only:
            raise StoreReadOnly(f"store {self.config.url}: {what} asked of a read-only store")

    def _txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
             failure: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return self._call("kv/txn", {"compare": compare, "success": success,
                                     "failure": failure or []})

    def _put_if_changed(self, key: str, value: str) -> None:
        """Put unless the key holds this very value (a no-op apply leaves the revision alone)."""
        self._txn([value_is(key, value)], [], [put(key, value)])

    # --- reading -----------------------------------------------------------------

    def read(self) -> ClusterView:
        """Everything under the prefix at one revision: one range read."""
        prefix = self.config.prefix
        reply = self._call("kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        revision = int(reply.get("header", {}).get("revision", 0))
        return keys.decode_view(prefix, revision, kvs(reply))

    def watch(self, from_revision: int, tick: float = 1.0) -> Iterator[ClusterView | None]:
        """After each change under the prefix past `from_revision`, a fresh view.

        Yields None after `tick` seconds without a change, so the caller can
        check whether to stop. Changes close together may come as one view.
        Raises `StoreUnavailable` when the store goes away (the caller retries
        with backoff and calls `watch` again from the last revision it saw).
        A reader thread follows etcd's watch stream; closing the generator
        shuts the stream down and ends the thread.
        """
        prefix = self.config.prefix
        request = {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                                      "start_revision": str(from_revision + 1)}}
        try:
            stream = self.gateway.stream("watch", request)
        except GatewayError as exc:
            raise self._unavailable(exc) from None
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        reader = threading.Thread(target=_follow, args=(stream, events.put), daemon=True,
                                  name="cnm-store-watch")
        reader.start()
        try:
            seen = from_revision
            while True:
                try:
                    kind, value = events.get(timeout=tick)
                except queue.Empty:
                    yield None
                    continue
                while kind == "change":  # coalesce what has already arrived
                    try:
                        kind, value = events.get_nowait()
                    except queue.Empty:
                        kind = "drained"
                if kind == "error":
                    raise self._unavailable(value)
                view = self.read()
                if view.revision > seen:
                    seen = view.revision
                    yield view
                if kind == "restart":  # compacted or cancelled: a fresh watch from here
                    yield from self.watch(seen, tick)
                    return
        finally:
            stream.shutdown()
            reader.join(timeout=2)

    # --- addresses -----------------------------------------------------------------

    def claim_address(self, network: str, address: str, holder: Holder) -> bool:
        """Claim `address` on `network` for `holder` in one transaction.

        True when `holder` now holds it (also when it already did), False
        when someone else does. Never overwrites another holder's claim.
        """
        return self.claim_addresses([(network, address, holder)])[0]

    def claim_addresses(self, claims: Sequence[tuple[str, str, Holder]]) -> list[bool]:
        """Claim each (network, address, holder), in transactions of up to `TXN_OPS`.

        Each claim's verdict in order, as `claim_address` gives it: every
        claim is tried, whatever happens to the others; a claim another
        holder has is never overwritten. No race: one round trip per chunk;
        a chunk with taken keys costs one more per attempt (txn.py).
        """
        self._writing("claim_addresses")
        return self._each_if(claims, _absent, put, created)

    def release_address(self, network: str, address: str, holder: Holder) -> bool:
        """Delete the claim only if `holder` holds it; True when it was deleted."""
        return self.release_addresses([(network, address, holder)])[0]

    def release_addresses(self, releases: Sequence[tuple[str, str, Holder]]) -> list[bool]:
        """`release_address` for each (network, address, holder), in batches; the verdicts."""
        self._writing("release_addresses")
        return self._each_if(releases, value_is, _delete, deleted)

    def _each_if(self, items: Sequence[tuple[str, str, Holder]],
                 condition: Callable[[str, str], Op], write: Callable[[str, str], Op],
                 verdict: Verdict) -> list[bool]:
        wanted = [(keys.address_key(self.config.prefix, network, address),
                   _holder_value(holder)) for network, address, holder in items]
        values: dict[str, str] = {}
        for key, value in wanted:
            values.setdefault(key, value)  # a key twice in one transaction: etcd refuses it
        outcome = self._batched(values, condition, write, verdict)
        return [outcome[key] and values[key] == value for key, value in wanted]

    def _batched(self, values: dict[str, str], condition: Callable[[str, str], Op],
                 write: Callable[[str, str], Op], verdict: Verdict) -> dict[str, bool]:
        try:
            return each_if(self._txn, values, condition, write, verdict)
        except UnexpectedReply as exc:
            raise StoreUnavailable(self.config.url, str(exc)) from None

    # --- VNIs ----------------------------------------------------------------------

    def claim_vni(self, network: str, wanted: int | None = None) -> int:
        """The network's VNI: the one it has, else `wanted`, else the lowest free from 4096.

        Allocated once per network name and stable afterwards. `VniTaken`
        when `wanted` is another network's, or differs from the VNI this
        network already has.
        """
        self._writing("claim_vni")
        if wanted is not None and not 1 <= wanted <= LAST_VNI:
            raise CnmError(f"network {network}: vni {wanted} is not in 1..{LAST_VNI}")
        prefix = self.config.prefix
        key = keys.vni_key(prefix, network)
        vni_prefix = prefix + keys.VNI
        for _ in range(64):  # each lost race means another network took a VNI; bounded
            reply = self._call("kv/range", {"key": b64(vni_prefix),
                                            "range_end": b64(prefix_end(vni_prefix))})
            vnis = keys.decode_view(prefix, 0, kvs(reply)).vnis
            have = vnis.get(network)
            if have is not None:
                if wanted is not None and wanted != have:
                    raise VniTaken(f"network {network}: vni {wanted} asked, but the store "
                                   f"{self.config.url} gave it {have}")
                return have
            owners = {v: n for n, v in vnis.items()}
            if wanted is not None:
                if wanted in owners:
                    raise VniTaken(f"network {network}: vni {wanted} is network "
                                   f"{owners[wanted]}'s in the store {self.config.url}")
                candidate = wanted
            else:
                candidate = next(v for v in range(FIRST_VNI, LAST_VNI + 1) if v not in owners)
            owner = keys.vni_owner_key(prefix, candidate)
            reply = self._txn([not_exists(key), not_exists(owner)],
                              [put(key, str(candidate)), put(owner, network)])
            if reply.get("succeeded"):
                return candidate
        raise StoreUnavailable(self.config.url, f"no VNI for network {network} after 64 races")

    # --- membership and endpoints ---------------------------------------------------

    def publish_member(self, member: Member) -> None:
        """Record that `member.host` takes part in `member.network` at `member.vtep`."""
        self._writing("publish_member")
        self._put_if_changed(keys.member_key(self.config.prefix, member.network, member.host),
                             keys.encode({"vtep": member.vtep}))

    def withdraw_member(self, network: str, host: str) -> None:
        """Remove the host's membership of the network (absent: nothing to do)."""
        self._writing("withdraw_member")
        self._call("kv/deleterange",
                   {"key": b64(keys.member_key(self.config.prefix, network, host))})

    def publish_endpoint(self, record: EndpointRecord) -> None:
        """Record an endpoint's MAC and addresses for its peers."""
        self._writing("publish_endpoint")
        key = keys.endpoint_key(self.config.prefix, record.network, record.host, record.set,
                                record.endpoint)
        self._put_if_changed(key, keys.encode({"mac": record.mac, "ipv4": record.ipv4,
                                               "ipv6": record.ipv6}))

    def withdraw_endpoint(self, network: str, host: str, set_: str, endpoint: str) -> None:
        """Remove an endpoint's record (absent: nothing to do)."""
        self._writing("withdraw_endpoint")
        key = keys.endpoint_key(self.config.prefix, network, host, set_, endpoint)
        self._call("kv/deleterange", {"key": b64(key)})

    def apply_changes(self, changes: StoreChanges) -> None:
        """Write what one host's settle found changed, in as few round trips as etcd allows:
        records put and withdrawn in transactions of up to `TXN_OPS` keys (a chunk whose
        records all hold their values already writes nothing), then the releases."""
        self._writing("apply_changes")
        prefix = self.config.prefix
        puts = {keys.member_key(prefix, m.network, m.host): keys.encode({"vtep": m.vtep})
                for m in changes.members}
        puts.update({keys.endpoint_key(prefix, r.network, r.host, r.set, r.endpoint):
                     keys.encode({"mac": r.mac, "ipv4": r.ipv4, "ipv6": r.ipv6})
                     for r in changes.endpoints})
        deletes = [keys.endpoint_key(prefix, *gone) for gone in changes.withdrawn_endpoints]
        deletes += [keys.member_key(prefix, *gone) for gone in changes.withdrawn_members]
        write_all(self._txn, puts, deletes)
        # after the records: an address freed while its record still named it could be
        # claimed and published by another endpoint, and its peers would see it twice
        if changes.released:
            self.release_addresses(changes.released)

    # --- liveness and cleanup ---------------------------------------------------------

    def keep_alive(self, host: str, vtep: str | None, ttl: int) -> Lease:
        """Grant a lease of `ttl` seconds and put the host's liveness key on it."""
        self._writing("keep_alive")
        value = keys.encode({"vtep": vtep})
        self._put_if_changed(keys.host_key(self.config.prefix, host), value)
        return Lease(self, host, value, ttl)

    def forget(self, host: str) -> int:
        """Release everything `host` holds (addresses, membership, endpoints, liveness keys).

        For `cnm cluster forget`: the only way a lost host's allocations are
        freed by someone else. Each key goes only if it still holds what was
        read (an address claimed anew meanwhile stays). Returns the number of
        keys removed.
        """
        self._writing("forget")
        keys.part("host", host)
        prefix = self.config.prefix
        reply = self._call("kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        doomed = [(k, v) for k, v in kvs(reply) if _belongs(prefix, k, v, host)]
        return sum(self._batched(dict(doomed), value_is, _delete, deleted).values())

    def close(self) -> None:
        """Drop the connections (idempotent)."""
        self.gateway.close()


def _belongs(prefix: str, key: str, value: str, host: str) -> bool:
    """Whether the key at `key` is one of `host`'s (by the layout in keys.py)."""
    rest = key[len(prefix):]
    kind, _, tail = rest.partition("/")
    parts = tail.split("/")
    if kind + "/" == keys.ADDRESS:
        return keys.decode_holder_host(value) == host
    if kind + "/" in (keys.MEMBER, keys.ENDPOINT):
        return len(parts) >= 2 and parts[1] == host
    return kind + "/" in (keys.ALIVE, keys.HOST) and parts == [host]


def _follow(stream: Stream, put: Callable[[tuple[str, Any]], None]) -> None:
    """The watch reader thread: what the stream says, as ("change" | "restart" | "error", _)."""
    try:
        for line in stream.lines():
            result = line.get("result", {})
            if result.get("canceled") or result.get("compact_revision"):
                put(("restart", None))
                return
            if result.get("events"):
                put(("change", None))
        put(("error", GatewayError("watch stream ended")))
    except GatewayError as exc:
        put(("error", exc))

"""etcd v3 transactions, built and batched: many keys per round trip, each key's own outcome.

A transaction (`kv/txn`) holds compares, the operations done when every
compare holds (success) and those done otherwise (failure). etcd refuses a
transaction with more than `--max-txn-ops` compares, or success, or failure
operations (128 by default), and one that writes a key twice; so a batch of
keys is cut into chunks of `TXN_OPS` distinct keys, one transaction each.

`each_if` is how one round trip claims (or releases) a chunk of addresses
while every key keeps its own verdict: the transaction's compares are the
keys' conditions, its success branch their writes, its failure branch a read
of each key. When it fails (some key did not meet its condition) nothing was
written, and the values read, at that very revision, say which keys failed
and why; the keys whose condition held are tried again without them. Every
failed attempt settles at least one key, so a chunk takes at most one round
trip per key, and one in the usual case of no race. Pure of I/O: the caller
passes the function that sends a transaction (store.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from .gateway import b64, unb64

#: Keys per transaction: below etcd's default --max-txn-ops (128), which counts the
#: compares, the success and the failure operations of one transaction apart
TXN_OPS = 100

Op = dict[str, Any]
#: (compares, success operations, failure operations) → etcd's reply
Txn = Callable[[list[Op], list[Op], list[Op]], dict[str, Any]]
#: A key's verdict from its value at the failed attempt's revision (None: absent):
#: True or False settles the key, None tries it again
Verdict = Callable[[str | None, str], bool | None]
T = TypeVar("T")


class UnexpectedReply(Exception):
    """etcd's reply to a transaction does not match what was sent (a broken store or proxy)."""


def not_exists(key: str) -> Op:
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def value_is(key: str, value: str) -> Op:
    return {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)}


def put(key: str, value: str, lease: int | None = None) -> Op:
    request: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease is not None:
        request["lease"] = str(lease)
    return {"request_put": request}


def delete(key: str) -> Op:
    return {"request_delete_range": {"key": b64(key)}}


def get(key: str) -> Op:
    return {"request_range": {"key": b64(key)}}


def kvs(reply: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, value) of a range reply (etcd leaves `kvs` out when there are none)."""
    return [(unb64(kv["key"]), unb64(kv.get("value", ""))) for kv in reply.get("kvs", [])]


def chunks(items: Sequence[T], size: int = TXN_OPS) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def each_if(txn: Txn, values: Mapping[str, str], condition: Callable[[str, str], Op],
            write: Callable[[str, str], Op], verdict: Verdict) -> dict[str, bool]:
    """For each key of `values`: `write` it if `condition` holds, in transactions of up to
    `TXN_OPS` keys; key → True when written, else what `verdict` says of its value."""
    outcome: dict[str, bool] = {}
    for chunk in chunks(list(values.items())):
        pending = list(chunk)
        while pending:
            reply = txn([condition(k, v) for k, v in pending], [write(k, v) for k, v in pending],
                        [get(k) for k, _ in pending])
            if reply.get("succeeded"):
                outcome.update((k, True) for k, _ in pending)
                break
            responses = reply.get("responses", [])
            if len(responses) != len(pending):
                raise UnexpectedReply(f"a failed transaction of {len(pending)} keys answered "
                                      f"{len(responses)} reads")
            retry = []
            for (key, value), response in zip(pending, responses, strict=True):
                read = kvs(response.get("response_range", {}))
                settled = verdict(read[0][1] if read else None, value)
                if settled is None:
                    retry.append((key, value))
                else:
                    outcome[key] = settled
            if len(retry) == len(pending):
                raise UnexpectedReply("a transaction failed although every key met its "
                                      "condition")
            pending = retry
    return outcome


def created(current: str | None, value: str) -> bool | None:
    """A claim's verdict: still absent, try again; holding `value` (ours already) is won."""
    return None if current is None else current == value


def deleted(current: str | None, value: str) -> bool | None:
    """A release's verdict: still `value`, try again; anything else is not ours to delete."""
    return None if current == value else False


def write_all(txn: Txn, puts: Mapping[str, str], deletes: Sequence[str]) -> int:
    """Put `puts` and delete `deletes` (distinct keys) in transactions of up to `TXN_OPS`
    keys; returns the round trips. A chunk whose keys already hold their values writes
    nothing (its compares hold and the success branch holds only its deletes, which of
    absent keys change nothing): applying the same records again leaves the revision."""
    items: list[tuple[str, str | None]] = [*puts.items(), *((k, None) for k in deletes)]
    trips = 0
    for chunk in chunks(items):
        same = [value_is(k, v) for k, v in chunk if v is not None]
        removals = [delete(k) for k, v in chunk if v is None]
        writes = [put(k, v) for k, v in chunk if v is not None]
        txn(same, removals, writes + removals)
        trips += 1
    return trips

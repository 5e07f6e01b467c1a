"""Reading many network namespaces on every core.

Reading a namespace is a few netlink dumps and three small files: a quarter
of a millisecond, almost all of it Python decoding the replies, so threads
would queue on the interpreter lock. On a host with a thousand sandboxes the
namespaces are split between the process and forked workers; each worker
reads its share with its own sockets and sends the fragments back pickled
through a pipe. Below `PARALLEL_MIN` namespaces, or when other threads run
(forking a multi-threaded process is unsafe: `cnm watch`), or on one core,
everything is read in-process. A worker that fails for any reason (killed,
out of memory) costs time, not correctness: the process reads its share
itself.

Read-only, like observation itself.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import Any

from reconciler.kernel import files
from reconciler.kernel.observe import Fragment, read_netns
from reconciler.kernel.session import KernelSession

#: Fewer namespaces than this are read in-process: a fork costs a few milliseconds.
PARALLEL_MIN = 64
#: At most this many readers (the process included).
MAX_READERS = 4

#: name -> (fragment, identity record) or the OSError reading it raised
Reads = dict[str, "tuple[Fragment, Any] | OSError"]


def read_one(
    set_name: str, session: KernelSession, name: str, *, with_files: bool = True
) -> tuple[Fragment, Any]:
    """One namespace's fragment and its identity record (see KernelSession.netns_seen)."""
    fragment = Fragment(set_name)
    identities: dict[str, Any] = {}
    try:
        read_netns(fragment, session.rtnl(name), name, identities, with_files=with_files)
    finally:
        session.forget(name)  # an open socket would pin the namespace
    return fragment, identities[name]


def with_files_read(fragment: Fragment, name: str) -> Fragment:
    """`fragment` with its sandbox's files (read now) among the sandbox's attributes."""
    sandboxes = [r for r in fragment.resources.values() if r.key.kind == "Sandbox"]
    if len(sandboxes) != 1:
        return fragment
    sandbox = sandboxes[0]
    return replace(fragment, resources={**fragment.resources,
                                        sandbox.key: sandbox.extended(files.read_files(name))})


def _read_all(set_name: str, names: Iterable[str], *, with_files: bool = True) -> Reads:
    result: Reads = {}
    with KernelSession() as session:
        for name in names:
            try:
                result[name] = read_one(set_name, session, name, with_files=with_files)
            except OSError as exc:  # removed meanwhile; the caller decides
                result[name] = exc
    return result


def readers(count: int) -> int:
    """How many processes should read `count` namespaces."""
    if count < PARALLEL_MIN or threading.active_count() > 1:
        return 1
    return max(1, min(MAX_READERS, len(os.sched_getaffinity(0))))


def read_namespaces(set_name: str, names: list[str]) -> Reads:
    """Fragments of `names`, read by `readers(len(names))` processes."""
    workers = readers(len(names))
    if workers == 1:
        return _read_all(set_name, names)
    shares = [names[i::workers] for i in range(workers)]
    # Workers leave the files out: a big network's hosts files are most of the bytes,
    # and reading them here is cheaper than pickling them across.
    children = [(share, _fork(partial(_read_all, set_name, share, with_files=False)))
                for share in shares[1:]]
    result = _read_all(set_name, shares[0])
    for share, (pid, pipe) in children:
        collected = _collect(pid, pipe)
        if collected is None:  # the worker failed or died: read its share here instead
            result.update(_read_all(set_name, share))
            continue
        for name, read in collected.items():
            if isinstance(read, tuple):
                read = (with_files_read(read[0], name), read[1])
            result[name] = read
    return result


def _fork(work: Callable[[], Reads]) -> tuple[int, int]:
    """Run `work` in a child; returns (pid, read end of the pipe carrying its result)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        status = 1
        try:
            os.close(read_end)
            payload = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
            status = 0
        finally:
            os._exit(status)  # on any failure: no output, status 1 (the parent reads again)
    os.close(write_end)
    return pid, read_end


def _collect(pid: int, pipe: int) -> Reads | None:
    """A worker's reads, or None when it failed (exit status, signal, truncated output)."""
    with os.fdopen(pipe, "rb") as source:
        payload = source.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        return None
    try:
        result = pickle.loads(payload)  # our own child's output, never outside input
    except (pickle.UnpicklingError, EOFError, ValueError):
        return None
    return result if isinstance(result, dict) else None

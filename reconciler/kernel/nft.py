"""cnm's nftables tables, through the nftables JSON API of the `nft` command.

Observation lists the two tables cnm may own (`inet cnm`, `bridge cnm`) with
`nft -j list table`; a change is one JSON document fed to `nft -j -f -` on
stdin, which libnftables commits as one atomic transaction. No shell is ever
involved and no rule is ever text: `reconciler.firewall` builds the JSON.

Why the nftables JSON interface and not pyroute2's nftables module or
libnftables' Python binding: the binding is Debian's `python3-nftables`,
tied to the system Python and not on PyPI; pyroute2 is no longer a
dependency of cnm, and its nftables module needs every DNAT assembled from
raw expressions and commits one transaction per call. The JSON interface is
documented and stable, and validates our rules with the parser users use.

It is reached in-process when it can be: `libnftables.so.1` (installed with
the `nft` command, whose engine it is) through four calls of its documented C
API (libnftables(3)), 0.2 ms a call; otherwise, or with `CNM_NFT` naming
another command, through `nft -j` processes, ~5 ms a call. A `cnm watch`
reconcile that changes a link makes three such calls. Both take the very
same JSON, so the two paths cannot disagree.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import threading
import weakref
from collections.abc import Sequence

from reconciler import firewall
from reconciler.caching import memoize
from reconciler.errors import KernelError

NFT = os.environ.get("CNM_NFT", "nft")
_ENV = {**os.environ, "LC_ALL": "C"}
_TIMEOUT = 60.0


def _spawn(args: Sequence[str], stdin: str | None) -> subprocess.Popen[str]:
    try:
        return subprocess.Popen(
            [NFT, *args], stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_ENV,
        )
    except FileNotFoundError:
        raise KernelError(
            "the `nft` command (Debian package nftables) is needed for cnm's firewall rules; "
            "install it (apt-get install nftables)"
        ) from None


def _finish(process: subprocess.Popen[str], stdin: str | None, what: str) -> str | None:
    """stdout of a finished nft; None when the table it lists does not exist."""
    try:
        out, err = process.communicate(stdin, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise KernelError(f"nft {what} did not finish in {_TIMEOUT:.0f} s", retryable=True) \
            from None
    return _outcome(process.returncode, out, err, what)


def installed() -> bool:
    return shutil.which(NFT) is not None


_NFT_CTX_OUTPUT_JSON = 1 << 4


class _Library:
    """libnftables in this process: one context, JSON in and out, output buffered."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        if not self._ctx:
            raise OSError("nft_ctx_new failed")
        weakref.finalize(self, lib.nft_ctx_free, self._ctx)
        lib.nft_ctx_output_set_flags(self._ctx, _NFT_CTX_OUTPUT_JSON)  # JSON in and out
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def run(self, command: str) -> tuple[int, str, str]:
        """(status, output, errors) of one command buffer (a transaction when JSON)."""
        with self._lock:
            status = self._lib.nft_run_cmd_from_buffer(self._ctx, command.encode())
            out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
            err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        return int(status), out.decode(), err.decode()


def _library() -> _Library | None:
    """libnftables when cnm runs the system's nftables (no `CNM_NFT`) and it loads.

    A context talks to the kernel through a netlink socket of the namespace it
    was made in, so there is one per network namespace (a test harness forks
    into fresh ones), never one carried into another namespace.
    """
    if "CNM_NFT" in os.environ or not installed():
        return None
    return _library_in(os.stat("/proc/thread-self/ns/net").st_ino)


@memoize(maxsize=None)
def _library_in(netns_inode: int) -> _Library | None:
    """The context of the namespace `netns_inode` (the argument is the cache key; with
    caches off, a context per call, freed with its object)."""
    try:
        return _Library(ctypes.CDLL("libnftables.so.1"))
    except (OSError, AttributeError):
        return None


def _outcome(status: int, out: str, err: str, what: str) -> str | None:
    """stdout of a finished command; None when the table it lists does not exist."""
    if status == 0:
        return out
    if "No such file or directory" in err and what.startswith("list"):
        return None
    detail = " ".join(err.split())[:500]
    raise KernelError(f"nft {what} failed: {detail}", retryable="Device or resource busy" in err)


def read_ruleset() -> firewall.Ruleset:
    """cnm's tables as the kernel shows them now (read-only).

    Without `nft` installed there is nothing cnm could have written: an empty
    ruleset, so that sets without bridge networks need no nftables at all (an
    apply that has rules to write says what to install).
    """
    if not installed():
        return firewall.Ruleset()
    library = _library()
    listings = _list_in_process(library) if library is not None else _list_by_processes()
    return firewall.Ruleset.from_nft(
        [item for out in listings if out for item in json.loads(out).get("nftables", [])]
    )


def _list_commands() -> list[str]:
    return [f"list table {family} {firewall.TABLE}" for family in firewall.FAMILIES]


def _list_in_process(library: _Library) -> list[str | None]:
    return [_outcome(*library.run(what), what) for what in _list_commands()]


def _list_by_processes() -> list[str | None]:
    """The listings of cnm's tables, the `nft` processes running concurrently."""
    running = [(what, _spawn(["-j", *what.split()], None)) for what in _list_commands()]
    try:
        return [_finish(process, None, what) for what, process in running]
    finally:
        for _, process in running:
            if process.poll() is None:
                process.kill()
                process.wait()


def list_ruleset() -> str | None:
    """`nft -j list ruleset`: every table of this namespace (None without nft)."""
    if not installed():
        return None
    library = _library()
    if library is not None:
        return _outcome(*library.run("list ruleset"), "list ruleset")
    return _finish(_spawn(["-j", "list", "ruleset"], None), None, "list ruleset")


def run_transaction(tx: firewall.Transaction) -> None:
    """Commit one transaction: every command or none."""
    if tx.empty:
        return
    document = json.dumps(tx.document())
    library = _library()
    if library is not None:
        _outcome(*library.run(document), "transaction")
        return
    _finish(_spawn(["-j", "-f", "-"], document), document, "transaction")

"""cnm's nftables tables, through the nftables JSON API of the `nft` command.

Observation lists the two tables cnm may own (`inet cnm`, `bridge cnm`) with
`nft -j list table`; a change is one JSON document fed to `nft -j -f -` on
stdin, which libnftables commits as one atomic transaction. No shell is ever
involved and no rule is ever text: `reconciler.firewall` builds the JSON.

Why `nft -j` and not pyroute2's nftables module or libnftables' Python
binding: the binding is Debian's `python3-nftables`, tied to the system
Python and not on PyPI; pyroute2 is no longer a dependency of cnm, and its
nftables module needs every DNAT assembled from raw expressions and commits
one transaction per call. `nft -j` is the documented, stable JSON interface,
validates our rules with the same parser users use, and costs one process
(~8 ms) per call, however many rules a transaction holds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from reconciler import firewall
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
    if process.returncode == 0:
        return out
    if "No such file or directory" in err and what.startswith("list"):
        return None
    detail = " ".join(err.split())[:500]
    raise KernelError(f"nft {what} failed: {detail}", retryable="Device or resource busy" in err)


def installed() -> bool:
    return shutil.which(NFT) is not None


def read_ruleset() -> firewall.Ruleset:
    """cnm's tables as the kernel shows them now (read-only; both listed concurrently).

    Without `nft` installed there is nothing cnm could have written: an empty
    ruleset, so that sets without bridge networks need no nftables at all (an
    apply that has rules to write says what to install).
    """
    if not installed():
        return firewall.Ruleset()
    running = [
        (family, _spawn(["-j", "list", "table", family, firewall.TABLE], None))
        for family in firewall.FAMILIES
    ]
    objects: list[dict[str, Any]] = []
    try:
        for family, process in running:
            out = _finish(process, None, f"list table {family} {firewall.TABLE}")
            if out:
                objects += json.loads(out).get("nftables", [])
    finally:
        for _, process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
    return firewall.Ruleset.from_nft(objects)


def run_transaction(tx: firewall.Transaction) -> None:
    """Commit one transaction: every command or none."""
    if tx.empty:
        return
    document = json.dumps(tx.document())
    _finish(_spawn(["-j", "-f", "-"], document), document, "transaction")

"""Netlink sockets per namespace, opened in-process, closed together.

Open sockets pin a namespace (a removed netns lives on until they close), so
a namespace's socket is dropped before the namespace is removed, and every
socket is closed when the session ends.
"""

from __future__ import annotations

import os
from types import TracebackType

from reconciler.errors import PrivilegeError
from reconciler.kernel.rtnl import Rtnl

_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21


def missing_capabilities() -> list[str]:
    """Names of the capabilities cnm needs that this process lacks."""
    try:
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("CapEff:"))
        effective = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError):
        return [] if os.geteuid() == 0 else ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    wanted = {"CAP_NET_ADMIN": _CAP_NET_ADMIN, "CAP_SYS_ADMIN": _CAP_SYS_ADMIN}
    return [name for name, bit in wanted.items() if not effective & (1 << bit)]


def require_privileges(what: str) -> None:
    """Fail in one line when the process cannot do `what` (a command's name, or what the
    API is doing: "observing the kernel")."""
    missing = missing_capabilities()
    if missing:
        raise PrivilegeError(
            f"{what} needs {' and '.join(missing)} (run as root); "
            "`cnm validate` and `cnm plan --observed FILE` work without them"
        )


class KernelSession:
    """One netlink socket per namespace (None = the host namespace), created on demand."""

    def __init__(self) -> None:
        self._sockets: dict[str | None, Rtnl] = {}
        #: netns name -> ((st_dev, st_ino) of the namespace, owner marker of its `lo`) as
        #: observed in this session: a later step that finds the very same namespace
        #: need not ask the kernel for its `lo` again (under the apply lock).
        self.netns_seen: dict[str, tuple[tuple[int, int], str | None]] = {}

    def rtnl(self, namespace: str | None = None) -> Rtnl:
        sock = self._sockets.get(namespace)
        if sock is None:
            sock = Rtnl(namespace)
            self._sockets[namespace] = sock
        return sock

    def adopt(self, namespace: str, sock: Rtnl) -> None:
        """Make `sock`, opened inside `namespace`, that namespace's socket (the one that
        labelled a new namespace's `lo`: kept, it spares the next step into that
        namespace a setns and a socket of its own)."""
        previous = self._sockets.get(namespace)
        if previous is not None and previous is not sock:
            previous.close()
        self._sockets[namespace] = sock

    def forget(self, namespace: str) -> None:
        """Close the socket into `namespace` so that removing it really frees it."""
        sock = self._sockets.pop(namespace, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

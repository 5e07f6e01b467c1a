"""Netlink sockets per namespace, opened in-process, closed together.

Open sockets pin a namespace (a removed netns lives on until they close), so
a namespace's socket is dropped before the namespace is removed, and every
socket is closed when the session ends.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import TYPE_CHECKING

from reconciler.errors import PrivilegeError
from reconciler.kernel import netns
from reconciler.kernel.rtnl import RtnlReader

if TYPE_CHECKING:
    from pyroute2 import IPRoute

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
    """Fail in one line when the process cannot do `what`."""
    missing = missing_capabilities()
    if missing:
        raise PrivilegeError(
            f"cnm {what} needs {' and '.join(missing)} (run as root); "
            "`cnm validate` and `cnm plan --observed FILE` work without them"
        )


class KernelSession:
    """Netlink sockets per namespace (None = the host namespace), created on demand.

    `reader()` gives the lean dump reader that observation uses; `ipr()` gives
    a pyroute2 socket for changes. pyroute2 is imported only when a change is
    made, so a plan never pays for its import.
    """

    def __init__(self) -> None:
        self._sockets: dict[str | None, IPRoute] = {}
        self._readers: dict[str | None, RtnlReader] = {}

    def ipr(self, namespace: str | None = None) -> IPRoute:
        sock = self._sockets.get(namespace)
        if sock is None:
            from pyroute2 import IPRoute

            with netns.entered(namespace):
                sock = IPRoute()
            self._sockets[namespace] = sock
        return sock

    def reader(self, namespace: str | None = None) -> RtnlReader:
        reader = self._readers.get(namespace)
        if reader is None:
            reader = RtnlReader(namespace)
            self._readers[namespace] = reader
        return reader

    def forget(self, namespace: str) -> None:
        """Close the sockets into `namespace` so that removing it really frees it."""
        sock = self._sockets.pop(namespace, None)
        if sock is not None:
            sock.close()
        reader = self._readers.pop(namespace, None)
        if reader is not None:
            reader.close()

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        for reader in self._readers.values():
            reader.close()
        self._sockets.clear()
        self._readers.clear()

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

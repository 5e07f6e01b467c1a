"""Named network namespaces, handled in-process.

pyroute2's `IPRoute(netns=...)` forks a helper per namespace (11-40 ms each);
entering a namespace with setns(2) in the calling thread, opening the netlink
socket there and coming back costs microseconds. Namespace switches affect only
the calling thread, which is why every switch here is a context manager that
always returns to where it started.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, path: str = "") -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def _setns(fd: int) -> None:
    _check(_libc.setns(fd, _CLONE_NEWNET), "setns")


def netns_path(name: str) -> Path:
    return NETNS_RUN_DIR / name


def is_netns(path: Path) -> bool:
    """True when `path` is a bind-mounted network namespace (not an empty leftover file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.stat(fd).st_dev != os.stat(path.parent).st_dev
    finally:
        os.close(fd)


def identity(name: str) -> tuple[int, int]:
    """(st_dev, st_ino) of the namespace bound at /run/netns/NAME: equal means the same one."""
    info = os.stat(netns_path(name))
    return (info.st_dev, info.st_ino)


def list_netns() -> list[str]:
    """Names of the named network namespaces under /run/netns, sorted."""
    try:
        names = sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []
    return [n for n in names if is_netns(NETNS_RUN_DIR / n)]


@contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the block with the calling thread inside netns `name` (None: stay where we are)."""
    if name is None:
        yield
        return
    target = os.open(netns_path(name), os.O_RDONLY)
    origin = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(origin)
    finally:
        os.close(origin)
        os.close(target)


def _share_run_dir() -> None:
    """Make /run/netns a shared mount, as iproute2 does, so netns mounts propagate."""
    NETNS_RUN_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = str(NETNS_RUN_DIR).encode()
    if _libc.mount(b"", run_dir, b"none", _MS_SHARED | _MS_REC, None) == 0:
        return
    _check(_libc.mount(run_dir, run_dir, b"none", _MS_BIND | _MS_REC, None), "mount", str(run_dir))
    _check(_libc.mount(b"", run_dir, b"none", _MS_SHARED | _MS_REC, None), "mount", str(run_dir))


def create_netns(name: str, setup: Callable[[], None] | None = None) -> None:
    """Create netns `name`; `setup` runs inside the new namespace before it gets its name.

    Running `setup` (which labels the namespace with cnm's marker) before the
    bind mount means a crash leaves either no namespace or a labelled one,
    never an unlabelled namespace that cnm would then refuse to touch.
    """
    path = netns_path(name)
    if path.exists():
        raise FileExistsError(errno.EEXIST, "netns exists", str(path))
    _share_run_dir()
    origin = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _check(_libc.unshare(_CLONE_NEWNET), "unshare")
        try:
            if setup is not None:
                setup()
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
            os.close(fd)
            try:
                _check(
                    _libc.mount(b"/proc/thread-self/ns/net", str(path).encode(), b"none",
                                _MS_BIND, None),
                    "mount", str(path),
                )
            except OSError:
                path.unlink(missing_ok=True)
                raise
        finally:
            _setns(origin)
    finally:
        os.close(origin)


def remove_netns(name: str) -> None:
    """Unmount and remove netns `name`; its links (veth peers included) go with it."""
    path = netns_path(name)
    _libc.umount2(str(path).encode(), _MNT_DETACH)
    path.unlink(missing_ok=True)

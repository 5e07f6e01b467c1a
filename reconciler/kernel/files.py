"""The files a sandbox owns under /etc/netns/<netns>/ (what `ip netns exec` bind-mounts).

Written in place, never replaced by rename: `ip netns exec` bind-mounts each
file over /etc/hosts, /etc/resolv.conf, /etc/hostname of the processes it
starts, so a process already running keeps the inode it was given, and only
a change of that inode's content reaches it (libnetwork writes in place for
the same reason).

Crash safety, chosen: write, then truncate, and let observation find a torn
file. The new content is written from the start of the file and the file is
truncated to its length. Every byte of these files is derived from the
manifests, so a write cut short by a crash of cnm leaves a file that reads
back different from the desired one: the next plan shows it (`files.hosts:
rewrite`) and apply writes it again. Nothing is lost that the manifests do not
hold, so no journal is needed; and no fsync: what a crashed process wrote is in
the page cache, and a power loss takes the namespaces themselves along
(/run/netns is a tmpfs), so apply recreates every sandbox with its files. A
reader racing a write may see a mix of the two contents for the duration of
one write(2), as with libnetwork.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

from reconciler.kernel.netns import NETNS_ETC_DIR

#: Attribute name -> file name. Only these files are ever written or removed.
MANAGED_FILES: Mapping[str, str] = {
    "files.hostname": "hostname",
    "files.hosts": "hosts",
    "files.resolv.conf": "resolv.conf",
}
_MAX_FILE = 1 << 20


def sandbox_dir(netns_name: str) -> str:
    """/etc/netns/<netns>, as a string: these paths are built for every sandbox of a
    big host, and `pathlib` costs several times the system calls they lead to."""
    return f"{NETNS_ETC_DIR}/{netns_name}"


def read_files(netns_name: str) -> dict[str, str | None]:
    """Current contents of the managed files (None when absent).

    Plain descriptors and string paths: observation reads these for every
    sandbox.
    """
    result: dict[str, str | None] = {}
    directory = sandbox_dir(netns_name) + "/"
    for attr, filename in MANAGED_FILES.items():
        try:
            fd = os.open(directory + filename, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            result[attr] = None
            continue
        try:
            size = min(os.fstat(fd).st_size, _MAX_FILE)  # no 1 MiB buffer per small file
            result[attr] = os.read(fd, size).decode("utf-8", errors="replace") if size else ""
        finally:
            os.close(fd)
    return result


def write_files(
    netns_name: str, wanted: Mapping[str, object], current: Mapping[str, object] | None = None
) -> None:
    """Make the managed files match `wanted` (attr -> content or None), in place.

    A file that already has the wanted content is left alone. `current`: the
    contents as this apply observed them (under its lock), so that a peer joining
    a big network does not read every sandbox's files once more; without, they
    are read now.
    """
    directory = sandbox_dir(netns_name)
    if current is None:
        current = read_files(netns_name)
    for attr, filename in MANAGED_FILES.items():
        if attr not in wanted or wanted[attr] == current.get(attr):
            continue
        content = wanted[attr]
        target = f"{directory}/{filename}"
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            continue
        write_in_place(directory, target, str(content).encode("utf-8"))


def write_in_place(directory: str, target: str, data: bytes) -> None:
    """Overwrite `target` with `data`, keeping its inode (see the module's docstring)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(target, flags, 0o644)
    except FileNotFoundError:  # the directory is missing
        os.makedirs(directory, exist_ok=True)
        fd = os.open(target, flags, 0o644)
    try:
        view, offset = memoryview(data), 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def remove_files(netns_name: str) -> None:
    """Remove the managed files, then the directory if nothing else is in it."""
    directory = sandbox_dir(netns_name)
    for filename in MANAGED_FILES.values():
        for path in (f"{directory}/{filename}", f"{directory}/.{filename}.cnm-tmp"):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(path)
    with contextlib.suppress(OSError):  # absent, or holds files cnm does not own
        os.rmdir(directory)

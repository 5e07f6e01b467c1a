"""Which process is a set's resolver (kernel/resolver.py `running_pid`): the one its pid
file names, with a resolver's command line for that directory, that sees that very
directory. A resolver of another mount namespace (another test's or container's
/run/cnm: the same path, other files) that was given a reused pid is not it, and cnm
must never signal it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from reconciler.kernel import resolver

DIRECTORY = resolver.directory_of("default")
#: A stand-in with a resolver's command line (python ignores the arguments after -c CODE).
LOOKALIKE = [sys.executable, "-c", "import time; time.sleep(60)",
             "reconciler.resolver.server", DIRECTORY]


def _pid_file(pid: int) -> None:
    os.makedirs(DIRECTORY, exist_ok=True)
    with open(f"{DIRECTORY}/pid", "w", encoding="ascii") as file:
        file.write(f"{pid}\n")


def _started(command: list[str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command)
    time.sleep(0.3)  # until it has exec'd (its command line is the stand-in's)
    return process


def test_a_lookalike_in_this_mount_namespace_counts() -> None:
    process = _started(LOOKALIKE)
    try:
        _pid_file(process.pid)
        assert resolver.running_pid(DIRECTORY) == process.pid
    finally:
        process.kill()
        process.wait()


def test_a_resolver_of_another_mount_namespace_is_not_this_one() -> None:
    elsewhere = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f"mount -t tmpfs other /run/cnm && mkdir -p {DIRECTORY} && exec \"$@\"",
                 "sh", *LOOKALIKE]
    process = _started(elsewhere)
    try:
        _pid_file(process.pid)
        assert b"reconciler.resolver.server" in Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert resolver.running_pid(DIRECTORY) is None
        resolver.stop("default")  # what `cnm delete` does: it must not signal that process
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()

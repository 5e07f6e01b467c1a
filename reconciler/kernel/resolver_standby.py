"""The resolver's interpreter, started early: its start-up overlaps the rest of the apply.

Starting the resolver is a fresh Python importing dnspython: about a fifth of a
second of one core, and before this module it came after every other step of
the plan (the resolver's phase is after the endpoints', since it answers on
their networks' gateway addresses). When a plan will start the resolver, the
pipeline now starts its interpreter at the beginning of `execute`, with
`--standby`: it imports what it serves with, then waits on its stdin and does
nothing observable (no file, no socket, no pid file). The resolver's step, at
its usual place, writes the configuration and tells it to start; from there it
is exactly the usual start (`kernel/resolver.py`: bind, fork, pid file, the
parent exits). An apply that never reaches that step (a failure, Ctrl-C) ends
the standby; one whose cnm process dies closes the pipe with it, and the
standby ends at EOF. A standby that cannot be started is no error: the
resolver's step then starts the resolver as before (and fails as before).

On an idle second core the interpreter's start-up is off the apply's critical
path (docs/performance.md, issue 15).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

#: What tells a standby to serve (the server reads exactly this line).
START_LINE = b"start\n"


def server_command(directory: str, *, standby: bool = False) -> list[str]:
    """The resolver's command line (`kernel/resolver.py` recognises its process by it)."""
    return [sys.executable, "-m", "reconciler.resolver.server",
            *(["--standby"] if standby else []), directory]


def server_env() -> dict[str, str]:
    """cnm's environment with this very package first on the path."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


class Standby:
    """A resolver interpreter waiting on its stdin to serve `directory`."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            server_command(directory, standby=True),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=server_env(), close_fds=True,
        )

    def start(self, timeout: float) -> tuple[int, bytes]:
        """Tell it to serve (its configuration is written); (exit status, stderr) of the
        process that forks the server, as `subprocess.run` gives them. Once only."""
        process, self.process = self.process, None
        assert process is not None, "a standby starts once"
        try:
            _, err = process.communicate(START_LINE, timeout=timeout)
        except subprocess.TimeoutExpired:  # as `subprocess.run(timeout=...)` does
            process.kill()
            process.communicate()
            raise
        return process.returncode, err

    def release(self) -> None:
        """Not needed after all: end it (it holds nothing: no file, no socket, no pid file)
        and reap it. It is killed rather than left to read EOF, which it would only do once
        its imports are done."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.kill()
        process.communicate()

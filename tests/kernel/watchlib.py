"""A `cnm watch` subprocess for kernel tests, and the manifests they start from.

The watcher runs as a real subprocess (`python -m reconciler watch`), started
by the test and ended by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from helpers import EXAMPLE, REPO
from isolation import signals_as_typed


class Watch:
    """A `cnm watch` subprocess and the log lines it has written so far."""

    def __init__(self, *args: str, cwd: Path = REPO) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "watch", *args],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=signals_as_typed,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 10.0,
                  after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if predicate(line):
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no such log line within {timeout} s; log:\n" + self.log())

    def log(self) -> str:
        return "\n".join(self.lines)

    def started(self) -> str:
        return self.wait_line(lambda line: "#1 start:" in line, timeout=20)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=2)
        return code

    def kill(self) -> None:
        """End the process by its PID if it is still running (test cleanup)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def quickstart(tmp_path: Path) -> Path:
    """The quickstart example's manifests, copied where a test may edit them."""
    target = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.sh"))
    return target

"""The README's first command: the quickstart runs end to end (plan, apply, TCP, empty re-plan)."""

from __future__ import annotations

import subprocess
import sys

from helpers import EXAMPLE, REPO


def test_quickstart_script_runs_clean() -> None:
    result = subprocess.run(
        ["bash", str(EXAMPLE / "run.sh")], capture_output=True, text=True, timeout=120,
        cwd=REPO, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                       "CNM": f"{sys.executable} -m reconciler", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Plan: 6 to create, 0 to update, 0 to delete." in out
    resolved = out.split("getent hosts www web1", 1)[1]  # the resolver answers
    assert "fd00:89::2      www" in resolved and "fd00:89::2      web1" in resolved
    assert "hello from web1 to 10.89.0.128" in out
    assert out.rstrip().endswith("quickstart: OK (the re-plan is empty; "
                                 "the namespace and everything in it is gone on exit)")
    assert out.count("No changes. The kernel matches the manifests.") == 1
    assert "\x1b" not in out + result.stderr  # a pipe: no escape codes, cnm's or the script's

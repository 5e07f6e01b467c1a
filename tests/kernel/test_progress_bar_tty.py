"""The progress bar of a long apply on a terminal ends at 100 % (the real console script
under a pseudo-terminal)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import REPO, cnm, links, many_endpoints, netns_names, write_manifests


def test_the_bar_of_a_long_apply_reaches_100_percent(tmp_path: Path) -> None:
    manifests = write_manifests(tmp_path / "m", many_endpoints("wide", "10.74.0.0/24", 20))
    leader, follower = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(manifests), "--yes"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, cwd=REPO,
        env=env)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, output
    text = output.decode()
    draws = [part for part in re.split(r"[\r\n]", text) if "%" in part]
    # the network, sandboxes, endpoints, the resolver, Firewall, BridgePorts
    steps = 1 + 20 + 20 + 1 + 2
    assert draws, text
    assert f"{steps}/{steps} 100%" in draws[-1] and draws[-1].startswith("[" + "#" * 10)
    assert "Apply complete" in text
    assert len(netns_names()) == 20 and "br-wide" in links()  # what the kernel shows
    assert cnm("plan", "-f", str(manifests), check=True).stdout.startswith("No changes.")
    cnm("delete", "-f", str(manifests), "--yes", check=True)
    assert netns_names() == [] and list(links()) == ["lo"]

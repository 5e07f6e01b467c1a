"""The command line's behaviour where it needs a kernel (docs/cli.md): `apply --dry-run`
is exactly `plan` with all its flags, `cnm get | head` ends quietly, no escape codes in
pipes, and delete speaks of deletion. Applied for real, checked with `ip -j`,
re-planned empty, torn down."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import faultlib

from helpers import EXAMPLE, REPO, cnm, links, netns_names


def _quickstart(tmp_path: Path) -> Path:
    target = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.sh"))
    return target


def _into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], stdout=write,
                              stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(write)


def test_cli_against_the_kernel(tmp_path: Path) -> None:
    manifests = _quickstart(tmp_path)
    for flags in ((), ("--detailed-exitcode",), ("-o", "json"), ("-o", "markdown")):
        planned = cnm("plan", "-f", str(manifests), *flags)
        dry = cnm("apply", "--dry-run", "-f", str(manifests), *flags)
        assert (dry.returncode, dry.stdout, dry.stderr) == \
               (planned.returncode, planned.stdout, planned.stderr), flags
    assert cnm("apply", "--dry-run", "-f", str(manifests), "--detailed-exitcode").returncode == 2
    assert netns_names() == []  # a dry run changes nothing

    applied = cnm("apply", "-f", str(manifests), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert re.search(r"^Apply complete: 6 created, ", applied.stderr, re.M), applied.stderr
    assert netns_names() == ["web1", "web2"] and "br-frontend" in links()

    for args in (("get",), ("get", "-o", "yaml"), ("observe", "-o", "json"), ("export",),
                 ("plan", "-f", str(manifests))):
        result = _into_a_closed_pipe(*args)
        assert (result.returncode, result.stderr) == (1, ""), (args, result.stderr)
        shown = cnm(*args)
        assert shown.returncode == 0 and "\x1b" not in shown.stdout + shown.stderr, args

    (manifests / "network.yaml").write_text(
        (manifests / "network.yaml").read_text().replace("mtu: 1500", "mtu: 1400"))
    changed = cnm("apply", "--dry-run", "-f", str(manifests), "--detailed-exitcode")
    assert changed.returncode == 2 and "mtu: 1500 -> 1400" in changed.stdout
    assert links()["br-frontend"]["mtu"] == 1500  # still a dry run
    (manifests / "network.yaml").write_text(
        (manifests / "network.yaml").read_text().replace("mtu: 1400", "mtu: 1500"))
    assert cnm("plan", "-f", str(manifests), "--detailed-exitcode").returncode == 0

    failed = faultlib.run("delete", "-f", str(manifests), "--yes", fault="fail@2")
    assert failed.returncode == 1
    assert re.match(r"cnm: delete failed at step \[\d+/\d+\] .*; rolled back: ",
                    failed.stderr.splitlines()[-1]), failed.stderr
    assert netns_names() == ["web1", "web2"] and "br-frontend" in links()  # rolled back

    deleted = cnm("delete", "-f", str(manifests), "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert re.search(r"^Delete complete: 6 deleted in ", deleted.stderr, re.M), deleted.stderr
    assert netns_names() == [] and "br-frontend" not in links()

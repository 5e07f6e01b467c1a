"""Privileges: without CAP_NET_ADMIN / CAP_SYS_ADMIN every command that needs the kernel
says so in one line and changes nothing; `validate`, `schema` and `plan --observed`
still work. Capabilities are dropped for real with setpriv(1) (util-linux)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import scenario
from faultlib import apply_all, inproc, record_count

from helpers import REPO, assert_same_kernel, kernel_dump

BOTH = "CAP_NET_ADMIN and CAP_SYS_ADMIN"
HINT = "(run as root); `cnm validate` and `cnm plan --observed FILE` work without them"
DROP_BOTH = ["--bounding-set=-net_admin,-sys_admin", "--inh-caps=-all"]
NO_CAPS = ["--bounding-set=-all", "--inh-caps=-all"]


def _cnm(drop: list[str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to drop capabilities")
    return subprocess.run(
        ["setpriv", *drop, "--", sys.executable, "-B", "-m", "reconciler", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60, input=stdin,
    )


def _setup(tmp_path: Path) -> tuple[str, str, str]:
    a, b = scenario.dirs(tmp_path)
    apply_all(a)
    snapshot = tmp_path / "observed.json"
    code, out, err = inproc("observe", "-o", "json")
    assert code == 0, err
    snapshot.write_text(out)
    return a, b, str(snapshot)


def test_without_capabilities_kernel_commands_refuse_in_one_line(tmp_path: Path) -> None:
    a, b, snapshot = _setup(tmp_path)
    before = kernel_dump()
    refused = {  # each names its own command, once (not "cnm: cnm ...")
        ("apply", "-f", b, "--yes"): "apply",
        ("apply", "-f", b, "--dry-run"): "apply",
        ("delete", "-f", a, "--yes"): "delete",
        ("plan", "-f", b): "plan",
        ("get",): "get",
        ("observe", "-o", "json"): "observe",
        ("export",): "export",
    }
    for args, what in refused.items():
        result = _cnm(DROP_BOTH, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr == f"cnm: {what} needs {BOTH} {HINT}\n", (args, result.stderr)
        assert result.stdout == ""
    assert_same_kernel(before, kernel_dump())

    works = _cnm(DROP_BOTH, "validate", "-f", b)
    assert works.returncode == 0 and works.stdout.startswith("Valid: 11 objects"), works.stderr
    planned = _cnm(DROP_BOTH, "plan", "-f", b, "--observed", snapshot, "--detailed-exitcode")
    assert planned.returncode == 2 and "Plan: 4 to create" in planned.stdout, planned.stderr
    assert _cnm(DROP_BOTH, "schema").returncode == 0
    assert_same_kernel(before, kernel_dump())
    record_count("privileges: commands tried without capabilities", len(refused) + 3)


@pytest.mark.parametrize("cap,name", [("net_admin", "CAP_NET_ADMIN"),
                                      ("sys_admin", "CAP_SYS_ADMIN")])
def test_the_message_names_exactly_the_missing_capability(
    tmp_path: Path, cap: str, name: str
) -> None:
    a, _, _ = _setup(tmp_path)
    result = _cnm([f"--bounding-set=-{cap}", "--inh-caps=-all"], "apply", "-f", a, "--yes")
    assert (result.returncode, result.stderr) == (1, f"cnm: apply needs {name} {HINT}\n")


def test_no_capabilities_at_all_gives_the_same_one_line(tmp_path: Path) -> None:
    """Every capability dropped (what an ordinary user has; a real non-root user cannot
    import this test run's root-owned Python environment)."""
    _, b, _ = _setup(tmp_path)
    text = Path(b, "all.yaml").read_text()
    before = kernel_dump()
    result = _cnm(NO_CAPS, "apply", "-f", "-", "--yes", stdin=text)
    assert (result.returncode, result.stderr) == (1, f"cnm: apply needs {BOTH} {HINT}\n")
    valid = _cnm(NO_CAPS, "validate", "-f", "-", stdin=text)
    assert valid.returncode == 0, valid.stderr
    invalid = _cnm(NO_CAPS, "validate", "-f", "-", stdin=text.replace("10.91.0.0/24", "bad"))
    assert invalid.returncode == 1 and invalid.stderr.startswith("<stdin>:"), invalid.stderr
    confirm = _cnm(NO_CAPS, "confirm")
    assert confirm.returncode == 1 and len(confirm.stderr.splitlines()) == 1
    assert_same_kernel(before, kernel_dump())

"""The project documents itself: no doc, README, example or source file links or points
outside the repository, every relative link reaches a file in it, and every `unshare`
command a doc or example suggests mounts private tmpfs on the directories cnm writes
(else a trial leaves /run/netns/NAME, /etc/netns/NAME and /run/cnm/apply.lock behind
on the machine)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Spelled apart so that this file does not match itself.
OUTSIDE = ("../" + "shared", "/work" + "/shared")
#: Where cnm writes, each of which a suggested namespace must cover with a tmpfs.
CNM_DIRS = ("/run/netns", "/etc/netns", "/run/cnm")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
UNSHARE = re.compile(r"\bunshare\b[^\n]*--net\b")
#: How far after `unshare` the tmpfs mounts of a command may come (a script's block).
WINDOW = 12


def _tracked() -> list[Path]:
    """The project's files: git's list in a clone; in a copy without git (a tarball, or a
    fresh machine that installed only what the README asks), every file but what
    .gitignore leaves out."""
    if shutil.which("git") is not None and (ROOT / ".git").exists():
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                               check=True).stdout.decode().split("\0")
        return [ROOT / name for name in names if name and (ROOT / name).is_file()]
    return sorted(path for path in ROOT.rglob("*")
                  if path.is_file() and not _ignored(path.relative_to(ROOT)))


def _ignored(relative: Path) -> bool:
    """What the project's .gitignore leaves out (directory patterns and *.egg-info)."""
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    return relative.parts[0] == ".git" or any(
        part in ignored or (part.endswith(".egg-info") and "*.egg-info" in ignored)
        for part in relative.parts)


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError):
        return None


def _documents() -> list[Path]:
    """What a user reads and runs as told: README, docs/, examples/, manifests/, and the
    sandbox helper they point to."""
    return [p for p in _tracked() if p.relative_to(ROOT).parts[0] in
            ("README.md", "docs", "examples", "manifests")
            or p.relative_to(ROOT).as_posix() == "tools/sandbox"]


def test_nothing_points_outside_the_repository() -> None:
    offenders = []
    for path in _tracked():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(outside in line for outside in OUTSIDE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_relative_link_reaches_a_file_of_the_repository() -> None:
    broken = []
    for path in _tracked():
        if path.suffix != ".md":
            continue
        for target in LINK.findall(path.read_text()):
            if re.match(r"^[a-z]+:|^#", target):
                continue
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert broken == []


def test_links_are_checked_at_all() -> None:
    """The link rule is not vacuous: the README links into docs/."""
    assert "docs/manifests.md" in LINK.findall((ROOT / "README.md").read_text())


def _unshare_commands() -> list[tuple[Path, int, str]]:
    """(file, line, the command with the lines after it) of every suggested `unshare`."""
    found = []
    for path in _documents():
        text = _text(path)
        if text is None:
            continue
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if UNSHARE.search(line):
                found.append((path, number, "\n".join(lines[number - 1:number - 1 + WINDOW])))
    return found


def test_unshare_commands_are_found() -> None:
    files = {path.relative_to(ROOT).as_posix() for path, _, _ in _unshare_commands()}
    assert {"tools/sandbox", "examples/quickstart/run.sh"} <= files


@pytest.mark.parametrize("where", _unshare_commands(),
                         ids=lambda w: f"{w[0].relative_to(ROOT)}:{w[1]}")
def test_every_suggested_unshare_mounts_tmpfs_on_cnms_directories(
    where: tuple[Path, int, str],
) -> None:
    _, _, command = where
    assert "--mount" in command and "tmpfs" in command
    for directory in CNM_DIRS:
        assert directory in command, f"no tmpfs on {directory}"


def test_the_docs_run_kernel_examples_through_the_sandbox() -> None:
    """The API example is suggested through tools/sandbox, in the doc and in its docstring."""
    suggestion = "tools/sandbox python3 examples/api/libnetwork_example.py"
    assert suggestion in " ".join((ROOT / "docs" / "api.md").read_text().split())
    assert suggestion in (ROOT / "examples" / "api" / "libnetwork_example.py").read_text()


def test_the_sandbox_leaves_nothing_behind() -> None:
    """tools/sandbox for real: what cnm's directories hold inside is gone outside."""
    before = {d: sorted(Path(d).iterdir()) if Path(d).is_dir() else None for d in CNM_DIRS}
    script = ("set -e; for d in " + " ".join(CNM_DIRS) + "; do "
              "grep -q \" $d tmpfs \" /proc/self/mounts; touch $d/cnm-sandbox-test; done; "
              "ip link add cnmsandboxtest type bridge; echo inside")
    result = subprocess.run([str(ROOT / "tools" / "sandbox"), "bash", "-c", script],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "inside\n", result.stderr
    after = {d: sorted(Path(d).iterdir()) if Path(d).is_dir() else None for d in CNM_DIRS}
    assert after == before
    links = subprocess.run(["ip", "-br", "link", "show", "cnmsandboxtest"],
                           capture_output=True, text=True)
    assert links.returncode != 0  # the bridge died with its namespace

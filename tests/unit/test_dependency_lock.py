"""The dependency locks (requirements/*.txt, made by tools/lock) match pyproject.toml.

A user installs requirements/runtime.txt, CI installs requirements/test.txt, so
both must pin, with hashes, every dependency pyproject.toml declares, at a version
it allows, and agree on every package they share. (`tools/lock --check`
re-resolves against the index; this test needs no network.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _pins(name: str) -> dict[str, str]:
    """package -> pinned version; fails on a requirement that is not `==` with hashes."""
    text = (ROOT / "requirements" / name).read_text()
    pins: dict[str, str] = {}
    for entry in re.split(r"\n(?=\S)", text):
        if not entry.strip() or entry.startswith("#"):
            continue
        match = PIN.match(entry)
        assert match, f"requirements/{name}: not an exact pin: {entry.splitlines()[0]}"
        assert "--hash=sha256:" in entry, f"requirements/{name}: {match[1]} has no hash"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(text) for text in names]


def _unlocked(extra: str | None, lock: str) -> list[str]:
    """Declared requirements the lock misses or pins at a version they do not allow."""
    pins = _pins(lock)
    wrong = []
    for requirement in _declared(extra):
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or version not in requirement.specifier:
            wrong.append(f"{requirement} (locked: {version or 'missing'})")
    return wrong


def test_runtime_lock_pins_every_runtime_dependency() -> None:
    assert _unlocked(None, "runtime.txt") == [], "run tools/lock"


def test_test_lock_pins_the_test_extra_too() -> None:
    assert _unlocked("test", "test.txt") == [], "run tools/lock"


def test_the_tests_run_on_the_versions_a_user_installs() -> None:
    runtime, test = _pins("runtime.txt"), _pins("test.txt")
    assert {name: test.get(name) for name in runtime} == runtime

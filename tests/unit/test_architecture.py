"""Import rules of docs/architecture.md, and the static checks, as tests.

Third-party libraries stay behind one module each (yaml in the loader;
netlink, raw or through a library, only in the kernel layer; a diff library,
if one comes back, only in diff.py), and only the kernel layer and the engine
above it may reach the kernel.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reconciler"

#: third-party module -> the only places that may import it
LIBRARY_HOMES = {
    "pyroute2": ("reconciler/kernel/",),
    "deepdiff": ("reconciler/diff.py",),
    "yaml": ("reconciler/loader.py",),
    "watchfiles": ("reconciler/watch.py",),
}
#: modules that must stay pure (no kernel access, directly or through imports)
PURE = ("model", "loader", "state", "ipam", "desired", "diff", "plan", "render", "naming",
        "sandbox_files", "errors", "drivers", "firewall", "rollback")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_third_party_libraries_stay_behind_one_module() -> None:
    offenders = []
    for path in _sources():
        relative = str(path.relative_to(ROOT))
        for name in _imports(path):
            top = name.split(".")[0]
            homes = LIBRARY_HOMES.get(top)
            if homes and not relative.startswith(homes):
                offenders.append(f"{relative} imports {name}")
    assert offenders == []


def test_pure_modules_do_not_import_the_kernel_layer() -> None:
    offenders = []
    for path in _sources():
        module = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if module not in PURE:
            continue
        for name in _imports(path):
            if name.startswith(("reconciler.kernel", "reconciler.engine", "reconciler.cli")):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def _tool(name: str) -> list[str]:
    # Looked up as a module of this interpreter, not on PATH: a venv's tools are
    # found even when the venv is not activated (`.venv/bin/python -m pytest`).
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements/test.txt")
    return [sys.executable, "-m", name]


def test_ruff_is_clean() -> None:
    result = subprocess.run([*_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([*_tool("mypy"), "--strict", "reconciler"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

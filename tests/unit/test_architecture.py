"""Import rules of docs/architecture.md, and the static checks, as tests.

Third-party libraries stay behind one module each (yaml in
yaml_documents.py, watchfiles in watch); pyroute2 and deepdiff are test
oracles that no module of cnm imports, even indirectly; raw netlink sockets
are opened only by `kernel/netlink.py`; and only the kernel layer and the
engine above it may reach the kernel.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reconciler"

#: third-party module -> the only places that may import it
LIBRARY_HOMES = {
    "yaml": ("reconciler/yaml_documents.py",),
    "watchfiles": ("reconciler/watch.py",),
    "dns": ("reconciler/resolver/server.py",),
}
#: modules that must stay pure (no kernel access, directly or through imports)
PURE = ("model", "validation", "manifest_schema", "loader", "manifest_files", "yaml_documents",
        "document_objects", "error_wording", "load_cache", "state", "ipam", "desired", "diff",
        "plan", "render", "naming", "sandbox_files", "errors", "drivers", "firewall", "rollback",
        "field_docs", "manifest_reference", "resolver")


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


#: test oracles (README, "Libraries, and why"): in the `test` extra, never imported by cnm
TEST_ORACLES = ("pyroute2", "deepdiff")
#: the one module that opens raw netlink sockets
NETLINK_HOME = "reconciler/kernel/netlink.py"
AF_NETLINK = 16


def test_test_oracles_are_imported_by_no_module_of_cnm() -> None:
    """Import every module of `reconciler` in a fresh interpreter: neither oracle may be
    loaded, directly or through any chain of imports; nor may cnm depend on them."""
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in _sources() if path.name != "__main__.py")
    script = (f"import importlib, sys\nfor name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(TEST_ORACLES)!r}))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"imported by cnm: {result.stdout.strip()}"
    assert len(modules) > 40  # every module was imported, not just the package
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert not any(oracle in runtime for oracle in TEST_ORACLES)
    test_extra = " ".join(project["optional-dependencies"]["test"])
    assert all(oracle in test_extra for oracle in TEST_ORACLES)


def _raw_netlink_uses(tree: ast.AST) -> list[int]:
    """Lines that name AF_NETLINK or open a socket of address family 16 (AF_NETLINK)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "AF_NETLINK" \
                or isinstance(node, ast.Name) and node.id == "AF_NETLINK" \
                or isinstance(node, ast.alias) and node.name == "AF_NETLINK":
            lines.append(getattr(node, "lineno", 0))
        elif isinstance(node, ast.Call):
            family = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "family")]
            if any(isinstance(f, ast.Constant) and f.value == AF_NETLINK for f in family) \
                    and ast.unparse(node.func).split(".")[-1] == "socket":
                lines.append(node.lineno)
    return lines


def test_raw_netlink_sockets_are_opened_only_by_the_netlink_module() -> None:
    offenders, home = [], []
    for path in _sources():
        relative = str(path.relative_to(ROOT))
        lines = _raw_netlink_uses(ast.parse(path.read_text()))
        (home if relative == NETLINK_HOME else offenders).extend(
            f"{relative}:{line}" for line in lines)
    assert offenders == []
    assert home, "the netlink module opens no netlink socket: is NETLINK_HOME still right?"


def test_the_raw_netlink_rule_sees_every_spelling() -> None:
    spellings = ["socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)",
                 "from socket import AF_NETLINK", "socket.socket(16, 3, 0)",
                 "socket(family=16, type=3)"]
    for source in spellings:
        assert _raw_netlink_uses(ast.parse(source)), source
    assert not _raw_netlink_uses(ast.parse("socket.socket(socket.AF_INET, 16)"))


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


#: what a pure module may not reach, through any chain of imports
IMPURE = ("reconciler.kernel", "reconciler.engine", "reconciler.cli", "reconciler.pipeline",
          "reconciler.watch", "reconciler.api", "reconciler.lock")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _runtime_imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The reconciler modules `path` imports at run time (inside functions too; what an
    `if TYPE_CHECKING:` block imports for annotations only does not count)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and ast.unparse(node.test).endswith("TYPE_CHECKING")
                   for stmt in node.body for n in ast.walk(stmt)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    # `from reconciler import x` runs the root package, which imports nothing of cnm
    return {name for name in found if name in known and name != "reconciler"}


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in _sources() if p.name != "__main__.py"}
    known = set(paths)
    graph = {name: _runtime_imports(path, name, known) for name, path in paths.items()}
    for name in known:  # importing a module runs its packages' __init__ first
        parent = name.rpartition(".")[0]
        while parent and parent != "reconciler":
            graph[name].add(parent)
            parent = parent.rpartition(".")[0]
    for name in known:  # a package may load any of its modules (drivers, firewall do)
        if paths[name].name == "__init__.py" and name != "reconciler":
            graph[name] |= {m for m in known if m.rpartition(".")[0] == name}
    return graph


def test_pure_modules_reach_no_kernel_code_through_any_chain_of_imports() -> None:
    graph = _import_graph()
    offenders = []
    for start in sorted(graph):
        if start == "reconciler" or start.split(".")[1] not in PURE:
            continue
        seen, todo, parent = {start}, [start], {start: start}
        while todo:
            current = todo.pop()
            for nxt in sorted(graph[current] - seen):
                seen.add(nxt)
                parent[nxt] = current
                todo.append(nxt)
        for bad in sorted(m for m in seen if m.startswith(IMPURE)):
            chain = [bad]
            while chain[-1] != start:
                chain.append(parent[chain[-1]])
            offenders.append(" -> ".join(reversed(chain)))
    assert offenders == []


def test_the_transitive_rule_sees_a_chain() -> None:
    graph = _import_graph()
    assert "reconciler.kernel.rtnl" in graph["reconciler.kernel.observe"]
    assert "reconciler.plan" in graph["reconciler.pipeline"]


def test_architecture_doc_names_every_module() -> None:
    """docs/architecture.md lists every module of reconciler/ (a package's modules in its
    row), and names no module that does not exist."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    first_cells = [row.split("`")[1] for row in rows]
    missing = []
    for path in _sources():
        relative = str(path.relative_to(PACKAGE))
        if path.name in ("__init__.py", "__main__.py") and relative != "__init__.py":
            continue
        if relative == "__init__.py" or f"`{relative}`" in doc:
            continue
        package = relative.rpartition("/")[0]
        in_package_row = any(row.startswith(f"| `{package}/`") and f"`{path.name}`" in row
                             for row in rows)
        if not in_package_row:
            missing.append(relative)
    assert missing == [], "modules docs/architecture.md does not name"
    ghosts = [cell for cell in first_cells if cell.endswith((".py", "/"))
              and not (PACKAGE / cell).exists()]
    assert ghosts == [], "docs/architecture.md names modules that do not exist"

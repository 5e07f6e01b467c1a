"""A command imports only what it needs (what is loaded, not how long it takes:
bench/bench_startup.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import reconciler

ROOT = Path(__file__).resolve().parents[2]

#: Loaded by no command that only parses its arguments.
HEAVY = ("pydantic", "yaml", "reconciler.model", "reconciler.engine", "reconciler.kernel",
         "urllib3", "reconciler.fleet.store", "reconciler.fleet.gateway", "argcomplete")
#: Loaded by no command that never touches the kernel. (The drivers are loaded by
#: validation, which asks each network's driver for its rules; they are pure modules.)
KERNEL_SIDE = ("reconciler.engine", "reconciler.kernel", "reconciler.desired",
               "reconciler.firewall", "reconciler.watch", "watchfiles", "urllib3",
               "reconciler.fleet.store")


def _modules_after(*args: str) -> list[str]:
    """The modules `cnm ARGS` has loaded when it is done (run in a fresh interpreter)."""
    code = (
        "import json, sys\n"
        "from reconciler import cli\n"
        "try:\n"
        f"    cli.main({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=60)
    loaded: list[str] = json.loads(result.stderr.strip().splitlines()[-1])
    return loaded


def _under(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


def test_version_and_help_load_nothing_heavy() -> None:
    for args in (("--version",), ("--help",), ("validate", "--help"), ("completion", "--help"),
                 ("cluster", "status", "--help")):
        assert _under(_modules_after(*args), HEAVY) == [], args


def test_validate_loads_no_kernel_side_module() -> None:
    loaded = _modules_after("validate", "-f", "examples/quickstart")
    assert "reconciler.quick_load" in loaded
    # valid manifests need no pydantic (plain_model.py): it words problems only
    assert _under(loaded, ("pydantic", "pydantic_core", "reconciler.model")) == []
    assert _under(loaded, KERNEL_SIDE) == []
    assert "reconciler.manifest_schema" not in loaded  # only `cnm schema` needs it
    assert _under(loaded, ("argcomplete",)) == []  # only completion needs it


def test_validate_loads_only_the_drivers_its_manifests_name() -> None:
    loaded = _modules_after("validate", "-f", "examples/quickstart")  # bridge networks only
    assert "reconciler.drivers.bridge" in loaded
    others = [f"reconciler.drivers.{name}" for name in ("macvlan", "null", "host")]
    assert [m for m in others if m in loaded] == []
    assert "reconciler.faults" not in loaded  # the drivers' apply steps load it
    assert "reconciler.state" not in loaded  # validation needs only resource_key.py


def test_version_prints_the_one_version() -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler", "--version"], capture_output=True,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0
    assert result.stdout == f"cnm {reconciler.__version__}\n"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "reconciler.__version__"}


def test_the_parsers_version_flag_prints_the_same_line(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    # `cnm --version` answers before the parser is built (cli/__init__.py); the parser
    # keeps the flag for --help and for `cnm --version` after another flag
    from reconciler.cli import main
    from reconciler.cli.parser import build_parser

    for run in (lambda: build_parser(None).parse_args(["--version"]),
                lambda: main(["--version"])):
        with pytest.raises(SystemExit) as leaving:
            run()
        assert leaving.value.code in (0, None)
        assert capsys.readouterr().out == f"cnm {reconciler.__version__}\n"


def test_version_loads_neither_errors_nor_what_it_needs() -> None:
    loaded = _modules_after("--version")
    # (json is the probe's own: _modules_after prints with it)
    assert [m for m in ("reconciler.errors", "dataclasses", "inspect", "argparse", "typing",
                        "reconciler.cli.parser") if m in loaded] == []

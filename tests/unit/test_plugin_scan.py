"""cli/plugin_scan.py: `cnm` imports no plugin scanner while pydantic's scan is off, and
pydantic's own scan runs when a user turns it on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Builds and uses a model the way `cnm validate` does, then reports what was imported.
PROBE = """
import sys
from reconciler.cli import plugin_scan
plugin_scan.skip_import()
from reconciler.model import Network
Network.model_validate({"apiVersion": "cnm/v1", "kind": "Network", "metadata": {"name": "n"}})
scanner = sys.modules[plugin_scan.SCANNER]
print("importlib.metadata" in sys.modules, hasattr(scanner, "__file__"))  # the stand-in has none
"""


def _probe(setting: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, check=True)
    return result.stdout.strip()


def test_scan_off_imports_no_scanner() -> None:
    assert _probe("__all__") == "False False"


def test_scan_on_runs_pydantics_own() -> None:
    # a user's own setting (here: one named plugin off) keeps pydantic's scan
    assert _probe("some-plugin") == "True True"
    assert _probe(None) == "True True"


#: a manifest with a problem: only then does `cnm validate` load pydantic (to word it)
BAD = "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: a}\nspec: {mtu: '9000'}\n"


def _validate_imports(setting: str | None) -> set[str]:
    """The modules `cnm validate` of a bad manifest imports (`-X importtime` lists them)."""
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reconciler", "validate", "-f", "-"],
        input=BAD, capture_output=True, text=True, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and "spec.mtu" in result.stderr, result.stderr
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_the_command_turns_the_scan_off_and_keeps_a_users_setting() -> None:
    scan_off = _validate_imports(None)
    assert "pydantic" in scan_off and "importlib.metadata" not in scan_off
    assert "importlib.metadata" in _validate_imports("some-plugin")

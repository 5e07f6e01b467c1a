"""The floor under `cnm validate`'s start-up: its libraries alone, no line of cnm.

What any `validate` built on pydantic and PyYAML pays before its own code: argparse,
pydantic (plugin scan off and its scanner module not imported, as in `cnm`: see
reconciler/cli/plugin_scan.py) with one one-field model built and used, PyYAML's
C loader over the quickstart's files. bench/bench_startup.py times it
next to the bare interpreter and cnm's commands.
"""

import argparse  # noqa: F401  (cnm parses its arguments with it)
import os
import sys
import types
from pathlib import Path

os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
# The least a scanner that is off can cost: nothing imported (cnm's stand-in does the same).
scanner = types.ModuleType("pydantic.plugin._loader")
setattr(scanner, "get_plugins", lambda: ())  # noqa: B010
sys.modules[scanner.__name__] = scanner

import yaml  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402


class Named(BaseModel):
    name: str = Field(min_length=1)


Named(name="floor")
folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/quickstart")
for path in sorted(folder.glob("*.yaml")):
    list(yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))

"""The floor under `cnm validate`'s start-up: its libraries alone, no line of cnm.

What any `validate` built on pydantic and PyYAML pays before its own code: argparse,
pydantic (plugin scan off, as in `cnm`) with one one-field model built and used,
PyYAML's C loader over the quickstart's files. bench/bench_startup.py times it
next to the bare interpreter and cnm's commands.
"""

import argparse  # noqa: F401  (cnm parses its arguments with it)
import os
import sys
from pathlib import Path

os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"

import yaml  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402


class Named(BaseModel):
    name: str = Field(min_length=1)


Named(name="floor")
folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/quickstart")
for path in sorted(folder.glob("*.yaml")):
    list(yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))

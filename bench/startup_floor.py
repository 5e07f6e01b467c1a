"""The floor under `cnm validate`'s start-up: its libraries alone, no line of cnm.

What any `validate` that reads YAML with PyYAML and parses its arguments with
argparse pays before its own code: argparse, PyYAML's C loader over the
quickstart's files, and `ipaddress` parsing every subnet and address written
there (validation checks address plans with it). pydantic is not among them:
`cnm validate` of valid manifests no longer imports it (reconciler/quick_load.py).
bench/bench_startup.py times it next to the bare interpreter and cnm's commands.
"""

import argparse
import ipaddress
import sys
from pathlib import Path

import yaml

parser = argparse.ArgumentParser(prog="floor")
parser.add_argument("folder", nargs="?", default="examples/quickstart")
folder = Path(parser.parse_args(sys.argv[1:]).folder)


def addresses(value: object) -> None:
    """Parse every string that is an address or a subnet, as validation does."""
    if isinstance(value, dict):
        for item in value.values():
            addresses(item)
    elif isinstance(value, list):
        for item in value:
            addresses(item)
    elif isinstance(value, str) and (":" in value or value[:1].isdigit()):
        try:  # noqa: SIM105 (contextlib: a module cnm does not load, not for the floor)
            ipaddress.ip_interface(value)
        except ValueError:
            pass


for path in sorted(folder.glob("*.yaml")):
    for document in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
        addresses(document)

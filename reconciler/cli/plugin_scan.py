"""pydantic's plugin scan, off for `cnm` without the cost of importing it.

cnm uses no pydantic plugin, so the command turns pydantic's scan for them off
(`PYDANTIC_DISABLE_PLUGINS=__all__`, unless the user set that variable). Off,
the scan does nothing, yet building the first model still imports the module
that would do it, and with it `importlib.metadata` and what that needs (email,
csv, zipfile): more than a bare interpreter's whole start-up, in every command
that validates a manifest (docs/performance.md, "Start-up").

`skip_import()` puts a stand-in under that module's name before pydantic is
imported. Its `get_plugins()` returns no plugin while the scan is off, as
pydantic's own does; should the scan be on after all, it imports pydantic's
module, puts it back in its place and hands over to it. The name is a private
one of pydantic's (the version is locked, and tests/unit/test_plugin_scan.py
checks both ways); were it to change, the stand-in would just not be used.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable

#: The module of pydantic that scans installed distributions for plugins.
SCANNER = "pydantic.plugin._loader"
#: The values of PYDANTIC_DISABLE_PLUGINS that turn the whole scan off (pydantic's own).
ALL_OFF = ("__all__", "1", "true")


def skip_import() -> None:
    """Stand in for pydantic's plugin scanner, unless pydantic already imported it."""
    if SCANNER not in sys.modules:
        stand_in = types.ModuleType(SCANNER, __doc__)
        setattr(stand_in, "get_plugins", get_plugins)  # noqa: B010
        sys.modules[SCANNER] = stand_in


def get_plugins() -> Iterable[object]:
    """No plugin while the scan is off; otherwise what pydantic's own scan finds."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in ALL_OFF:
        return ()
    sys.modules.pop(SCANNER, None)
    import importlib

    scanner = importlib.import_module(SCANNER)  # pydantic's, now in its place
    found: Iterable[object] = scanner.get_plugins()
    return found

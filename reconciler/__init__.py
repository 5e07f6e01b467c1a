"""cnm: Docker libnetwork's Container Network Model as a declarative reconciler.

`from reconciler import Controller` gives the libnetwork-style Python API
(see `reconciler.api`); it is imported on first use so that the CLI and the
pure modules do not pay for it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: every command would import typing for one name
if TYPE_CHECKING:
    from typing import Any

#: The one place the version is written: pyproject.toml reads it from here
#: (setuptools dynamic version), `cnm --version` prints it.
__version__ = "0.1.0"

_API_NAMES = ("Controller", "Network", "Endpoint", "Sandbox", "NotFoundError",
              "AlreadyExistsError", "InUseError", "InvalidNameError")
__all__ = list(_API_NAMES)


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from reconciler import api

        return getattr(api, name)
    raise AttributeError(f"module 'reconciler' has no attribute {name!r}")

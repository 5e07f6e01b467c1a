"""Test wiring: kernel tests each run in their own fresh net + mount namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from isolation import run_isolated  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kernel: needs root; runs in a forked child with fresh net+mount namespaces"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.kernel)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if pyfuncitem.get_closest_marker("kernel") is None:
        return None
    if os.geteuid() != 0:
        pytest.fail("kernel tests need root (they run in throw-away namespaces)")
    func = pyfuncitem.obj
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    run_isolated(func, **kwargs)
    return True


def _host_links() -> list[tuple[str, str]]:
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True)
    return sorted((link["ifname"], link.get("address", "")) for link in json.loads(out.stdout))


@pytest.fixture(scope="session", autouse=True)
def host_network_untouched() -> Iterator[None]:
    """Guard: the machine's own links are the same after the whole session."""
    if os.geteuid() != 0:
        yield
        return
    before = _host_links()
    netns_before = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    yield
    assert _host_links() == before, "a test changed the host's links"
    netns_after = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    assert netns_after == netns_before, "a test changed the host's named namespaces"

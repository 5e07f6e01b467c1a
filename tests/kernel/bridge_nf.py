"""The `bridge_nf` fixture: a firewall kernel test runs twice, with br_netfilter's
bridge-nf-call-iptables (and -ip6tables) off and on in its namespace
(tests/isolation.py sets them in the fresh namespace). Import it into a test module
(`from bridge_nf import bridge_nf  # noqa: F401`) to parametrize all its tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from isolation import BRIDGE_NF_ENV


@pytest.fixture(params=["0", "1"], ids=["br_netfilter-off", "br_netfilter-on"], autouse=True)
def bridge_nf(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(BRIDGE_NF_ENV, request.param)
    yield request.param

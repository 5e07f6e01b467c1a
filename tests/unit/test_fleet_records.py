"""The fleet's pure parts: the store URL, the key layout both ways, the status text."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.fleet import keys
from reconciler.fleet.cluster_cli import status_document, status_text
from reconciler.fleet.records import (
    ClusterView,
    EndpointRecord,
    Holder,
    HostRecord,
    Member,
    StoreUrlError,
    parse_store_url,
)
from reconciler.fleet.store_options import add_store_options, store_config

P = "/cnm/v1/"
ROOT = Path(__file__).resolve().parents[2]


def test_store_url_one_and_many_endpoints() -> None:
    one = parse_store_url("etcd://192.0.2.10:2379")
    assert one.endpoints == ("192.0.2.10:2379",)
    assert one.prefix == P and not one.tls
    many = parse_store_url("etcd://192.0.2.10:2379,[2001:db8::0:1]:2379/")
    assert many.endpoints == ("192.0.2.10:2379", "[2001:db8::1]:2379")
    assert many.url == "etcd://192.0.2.10:2379,[2001:db8::1]:2379"


def test_store_url_with_tls_files() -> None:
    config = parse_store_url("etcd://127.0.0.1:2379", ca="ca.pem", cert="c.pem", key="k.pem")
    assert config.tls and (config.ca, config.cert, config.key) == ("ca.pem", "c.pem", "k.pem")
    assert parse_store_url("etcd://127.0.0.1:2379", ca="ca.pem").tls


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:2379", "etcd://", "etcd://127.0.0.1", "etcd://127.0.0.1:0",
    "etcd://127.0.0.1:70000", "etcd://etcd.example:2379", "etcd://127.0.0.1:2379,",
    "etcd://2001:db8::1:2379x",
])
def test_bad_store_urls_are_one_line_naming_the_option(url: str) -> None:
    with pytest.raises(StoreUrlError) as caught:
        parse_store_url(url)
    message = caught.value.one_line()
    assert message.startswith(f"--store {url}: ") and "\n" not in message


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(StoreUrlError, match="--store-cert and --store-key"):
        parse_store_url("etcd://127.0.0.1:2379", cert="c.pem")


def test_store_options_from_arguments_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_store_options(parser)
    monkeypatch.delenv("CNM_STORE", raising=False)
    assert store_config(parser.parse_args([])) is None
    monkeypatch.setenv("CNM_STORE", "etcd://127.0.0.1:2379")
    monkeypatch.setenv("CNM_STORE_CA", "/ca.pem")
    from_env = store_config(parser.parse_args([]))
    assert from_env is not None and from_env.endpoints == ("127.0.0.1:2379",)
    assert from_env.ca == "/ca.pem"
    given = store_config(parser.parse_args(["--store", "etcd://127.0.0.2:2379"]))
    assert given is not None and given.endpoints == ("127.0.0.2:2379",)  # the option wins


def test_keys_refuse_names_that_would_make_them_ambiguous() -> None:
    for bad in ("", "a/b", "..", "."):
        with pytest.raises(keys.KeyPartError):
            keys.member_key(P, "ov", bad)
    assert keys.member_key(P, "ov", "h1") == "/cnm/v1/member/ov/h1"


def test_one_address_has_one_key_however_it_is_spelled() -> None:
    assert keys.address_key(P, "ov", "2001:db8:0::5") == keys.address_key(P, "ov", "2001:db8::5")
    assert keys.address_key(P, "ov", "10.50.0.2/16") == "/cnm/v1/address/ov/10.50.0.2"


def _layout() -> list[tuple[str, str]]:
    return [
        (keys.vni_key(P, "ov"), "4097"),
        (keys.vni_owner_key(P, 4097), "ov"),
        (keys.address_key(P, "ov", "10.50.0.2"),
         keys.encode({"host": "h1", "set": "default", "endpoint": "s1-ov"})),
        (keys.address_key(P, "ov", "10.50.0.3"),
         keys.encode({"host": "h2", "set": "default", "endpoint": "s2-ov"})),
        (keys.member_key(P, "ov", "h1"), keys.encode({"vtep": "192.0.2.1"})),
        (keys.member_key(P, "ov", "h2"), keys.encode({"vtep": "192.0.2.2"})),
        (keys.endpoint_key(P, "ov", "h1", "default", "s1-ov"),
         keys.encode({"mac": "02:00:00:00:00:01", "ipv4": "10.50.0.2", "ipv6": None})),
        (keys.alive_key(P, "h1"), keys.encode({"vtep": "192.0.2.1"})),
        (keys.host_key(P, "h1"), keys.encode({"vtep": "192.0.2.1"})),
        (keys.host_key(P, "h3"), keys.encode({"vtep": "192.0.2.3"})),
    ]


def test_the_layout_reads_back_as_a_view() -> None:
    view = keys.decode_view(P, 42, _layout())
    assert view.revision == 42
    assert dict(view.vnis) == {"ov": 4097}
    assert view.addresses[("ov", "10.50.0.2")] == Holder("h1", "default", "s1-ov")
    assert view.members == (Member("ov", "h1", "192.0.2.1"), Member("ov", "h2", "192.0.2.2"))
    assert view.endpoints == (EndpointRecord("ov", "h1", "default", "s1-ov",
                                             "02:00:00:00:00:01", "10.50.0.2", None),)
    assert view.hosts == (HostRecord("h1", "192.0.2.1", True, True),
                          HostRecord("h2", "192.0.2.2", False, False),
                          HostRecord("h3", "192.0.2.3", False, True))
    assert [h.lease for h in view.hosts] == ["alive", "none", "expired"]
    assert view.held_by("h2") == {("ov", "10.50.0.3"): Holder("h2", "default", "s2-ov")}


def test_keys_the_layout_does_not_know_are_skipped() -> None:
    junk = [(P + "future/x", "{}"), (P + "member/ov", "{}"), (P + "member/ov/h9", "not json"),
            (P + "vni/ov", "many"), ("/other/vni/x", "5"), (P + "address/ov/10.0.0.1", "[]")]
    view = keys.decode_view(P, 7, junk)
    assert view == ClusterView(revision=7)


def test_a_view_cannot_be_changed() -> None:
    view = keys.decode_view(P, 1, _layout())
    with pytest.raises(TypeError):
        view.vnis["other"] = 5  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.revision = 2  # type: ignore[misc]


def test_values_are_one_spelling() -> None:
    assert keys.encode({"b": 1, "a": None}) == '{"a":null,"b":1}'


def test_status_names_hosts_networks_endpoints_and_expired_leases() -> None:
    config = parse_store_url("etcd://127.0.0.1:2379")
    view = keys.decode_view(P, 42, _layout())
    document = status_document(config, view)
    assert [(h["host"], h["lease"], h["endpoints"], h["addresses"]) for h in document["hosts"]] \
        == [("h1", "alive", ["default/s1-ov"], 1), ("h2", "none", [], 1), ("h3", "expired", [], 0)]
    assert document["networks"] == [{"network": "ov", "vni": 4097, "hosts": ["h1", "h2"]}]
    text = status_text(config, view)
    lines = text.splitlines()
    assert lines[0] == "store etcd://127.0.0.1:2379 at revision 42"
    assert lines[3].split() == ["h1", "192.0.2.1", "alive", "1", "1"]
    assert lines[5].split() == ["h3", "192.0.2.3", "expired", "0", "0"]
    assert ["ov", "4097", "h1,h2"] in [line.split() for line in lines]


@pytest.mark.parametrize("args", [
    ("status", "--store", "http://127.0.0.1:2379"),
    ("status",),
    ("forget", "h1", "--store", "etcd://127.0.0.1:2379", "--store-cert", "c.pem"),
    ("status", "--store", "etcd://127.0.0.1:2379", "--store-ca", "/nonexistent/ca.pem"),
])
def test_cluster_commands_with_a_bad_store_say_so_in_one_line(args: tuple[str, ...]) -> None:
    """Refused before any connection is tried (nothing listens on these addresses anyway)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNM_STORE")}
    result = subprocess.run([sys.executable, "-m", "reconciler", "cluster", *args],
                            capture_output=True, text=True, cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1 and "--store" in lines[0], lines

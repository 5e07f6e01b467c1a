"""The resolver planned as data: its records per network, each sandbox's scope and
upstreams, its configuration file both ways, plans that name what changes, and the
server's answers (its lookup, without sockets)."""

from __future__ import annotations

import json
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from reconciler.desired import build_desired
from reconciler.engine import deletion_plan
from reconciler.plan import make_plan
from reconciler.render import render_text
from reconciler.resolver.records import (
    STATUS_NAME,
    attrs_of_config,
    config_text,
    digest,
    resolver_aliases,
    upstreams_of,
)
from reconciler.resolver.server import Resolver
from reconciler.state import ResourceKey, State

from builders import endpoint, manifests, network, sandbox

RESOLVER = ResourceKey("Resolver", "default")


def _world(*extra: object, macvlan: bool = False) -> object:
    lan = (network("lan", "10.3.0.0/24", driver="macvlan", parent="eth9"), sandbox("mac"),
           endpoint("mac-lan", "lan", "mac")) if macvlan else ()
    return manifests(
        network("front", "10.1.0.0/24", "fd00:1::/64"), network("back", "10.2.0.0/24"),
        sandbox("web", hostname="Www-Host", domainname="example.org",
                dns={"servers": ["192.0.2.53"], "search": ["example.org"]}),
        sandbox("db"), sandbox("app"),
        endpoint("web-front", "front", "web", aliases=["www", "Portal"],
                 ipv4Address="10.1.0.10", ipv6Address="fd00:1::10"),
        endpoint("db-back", "back", "db"),
        endpoint("app-front", "front", "app"),
        endpoint("app-back", "back", "app", ifname="eth1", gateway=False),
        *lan, *extra,  # type: ignore[arg-type]
    )


def _applied(m: object) -> State:
    return build_desired(m, "default", State("default"))  # type: ignore[arg-type]


def test_records_are_per_network_with_every_kind_of_name() -> None:
    resolver = _applied(_world(macvlan=True)).get(RESOLVER)
    assert resolver is not None
    front = resolver.get("names.front")
    assert isinstance(front, tuple)
    for name in ("web", "www-host", "www-host.example.org", "web-front", "www", "portal"):
        assert f"{name} 10.1.0.10" in front and f"{name} fd00:1::10" in front, name
    assert "db 10.2.0.3" not in front and "db 10.2.0.3" in resolver.get("names.back")  # type: ignore[operator]
    assert "names.lan" not in resolver.attrs  # macvlan: no gateway on the host to listen on
    assert resolver.get("listen") == ("10.1.0.1 front", "10.2.0.1 back", "fd00:1::1 front")
    assert resolver.get("scopes") == ("app back,front", "db back", "web front")
    assert resolver.get("upstreams") == ("web 192.0.2.53",)
    assert resolver.get("process") == "serving"


def test_resolv_conf_names_the_resolver_and_keeps_search() -> None:
    state = _applied(_world(macvlan=True))
    web = state.get(ResourceKey("Sandbox", "web"))
    app = state.get(ResourceKey("Sandbox", "app"))
    mac = state.get(ResourceKey("Sandbox", "mac"))
    assert web is not None and app is not None and mac is not None
    assert web.get("files.resolv.conf") == (
        "# Managed by cnm.\nnameserver 10.1.0.1\nsearch example.org\n")
    assert app.get("files.resolv.conf") == (
        "# Managed by cnm.\nnameserver 10.2.0.1\nnameserver 10.1.0.1\n")
    assert mac.get("files.resolv.conf") is None  # no network the resolver serves
    assert "10.1.0.2" not in str(web.get("files.hosts"))  # no peers in hosts


def test_no_resolver_without_a_sandbox_on_a_bridge_network() -> None:
    m = manifests(network("lan", "10.3.0.0/24", driver="macvlan", parent="eth9"),
                  sandbox("mac"), endpoint("mac-lan", "lan", "mac"))
    assert _applied(m).get(RESOLVER) is None


def test_configuration_file_reads_back_into_the_same_attributes() -> None:
    resolver = _applied(_world()).get(RESOLVER)
    assert resolver is not None
    text = config_text("default", resolver.attrs)
    back = attrs_of_config("default", text)
    assert back == {k: v for k, v in resolver.attrs.items() if k != "process"}
    assert json.loads(text)["owner"] == "cnm/v1 set=default Resolver/default"
    assert attrs_of_config("other", text) is None  # another set's file is not this one's
    assert attrs_of_config("default", "not json") is None


def test_one_more_endpoint_is_one_resolver_update_and_no_sandbox_change() -> None:
    before = _applied(_world())
    after = build_desired(_world(sandbox("late"), endpoint("late-front", "front", "late")),
                          "default", before)
    plan = make_plan(after, before)
    assert sorted((a.verb, str(a.key)) for a in plan) == [
        ("create", "Endpoint/late-front"), ("create", "Sandbox/late"),
        ("update", "Resolver/default"),
    ]
    text = render_text(plan)
    assert "names.front: +[late 10.1.0.3, late fd00:1::3, late-front 10.1.0.3" in text


def test_delete_keeps_the_resolver_for_what_stays_and_removes_it_with_the_last() -> None:
    observed = _applied(_world())
    planned = deletion_plan(manifests(network("back", "10.2.0.0/24"), sandbox("db"),
                                      endpoint("db-back", "back", "db")), observed)
    kept = planned.desired.get(RESOLVER)
    assert kept is not None and "names.back" not in kept.attrs
    assert "db 10.2.0.3" not in str(kept.attrs) and "app back" not in str(kept.get("scopes"))
    everything = deletion_plan(_world(), observed)  # type: ignore[arg-type]
    assert everything.desired.get(RESOLVER) is None
    assert ("delete", "Resolver/default") in [(a.verb, str(a.key)) for a in everything.plan]


def test_export_reads_aliases_and_servers_from_the_resolver() -> None:
    state = _applied(_world())
    resolver, web_front = state.get(RESOLVER), state.get(ResourceKey("Endpoint", "web-front"))
    assert web_front is not None
    assert resolver_aliases(resolver, web_front, {"web", "Www-Host",
                                                  "Www-Host.example.org"}) == ["portal", "www"]
    assert resolver is not None
    assert upstreams_of(resolver, "web") == ["192.0.2.53"]
    assert upstreams_of(resolver, "db") == []
    assert upstreams_of(resolver, "mac") is None


@pytest.fixture()
def server(tmp_path: Path) -> Resolver:
    resolver = _applied(_world()).get(RESOLVER)
    assert resolver is not None
    (tmp_path / "config.json").write_text(config_text("default", resolver.attrs))
    serving = Resolver(str(tmp_path))
    from reconciler.resolver import server as module

    serving.config = module.load(str(tmp_path))
    return serving


def _ask(server: Resolver, name: str, kind: str, source: str, at: str) -> list[str] | None:
    query = dns.message.make_query(name, kind)
    sandbox = server.config.client_sandbox.get(source)
    scope = sandbox if sandbox is not None else "@" + at
    answer = server._local_answer(query, scope, sandbox, None)  # type: ignore[arg-type]
    if answer is None:
        return None
    assert answer.rcode() == dns.rcode.NOERROR
    return sorted(r.to_text() for rrset in answer.answer for r in rrset)


def test_server_answers_a_sandbox_from_all_its_networks_and_nothing_else(
        server: Resolver) -> None:
    app_front, web = "10.1.0.2", "10.1.0.10"
    assert _ask(server, "db", "A", app_front, "10.1.0.1") == ["10.2.0.3"]  # via back
    assert _ask(server, "WWW.", "A", app_front, "10.1.0.1") == [web]
    assert _ask(server, "www", "AAAA", app_front, "10.1.0.1") == ["fd00:1::10"]
    assert _ask(server, "db", "A", web, "10.1.0.1") is None  # not web's network: upstream
    assert _ask(server, "db-back", "AAAA", "10.2.0.2", "10.2.0.1") == []  # known, no AAAA
    # an address that is no endpoint: the names of the network whose gateway it asked
    assert _ask(server, "www", "A", "10.1.0.200", "10.1.0.1") == [web]
    assert _ask(server, "www", "A", "10.2.0.200", "10.2.0.1") is None


def test_server_status_answers_the_digest_of_its_configuration(server: Resolver) -> None:
    answer = server._local_answer(dns.message.make_query(STATUS_NAME, "TXT"), "web", "web",
                                  None)  # type: ignore[arg-type]
    assert answer is not None
    assert answer.answer[0][0].to_text() == f'"{digest(server.config.text)}"'
    assert server._upstreams("web") == ["192.0.2.53"]

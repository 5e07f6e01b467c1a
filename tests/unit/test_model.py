"""The manifest model and every cross-object rule of `validation.validate`.

Rules are exercised through `load_text` so that each test also pins the exact
`file:line: Kind/name: field:` prefix a user sees.
"""

from __future__ import annotations

import json
import textwrap
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

import pytest
from pydantic import ValidationError

from reconciler.errors import ManifestError
from reconciler.loader import load_text
from reconciler.manifest_schema import json_schema
from reconciler.manifest_set import Manifests, ManifestSource
from reconciler.model import (
    DnsConfig,
    Endpoint,
    EndpointSpec,
    IpamPool,
    Metadata,
    Network,
    NetworkSpec,
    PortMapping,
    Sandbox,
    SandboxSpec,
)
from reconciler.state import ResourceKey
from reconciler.validation import validate

FILE = "m.yaml"


def problems_of(text: str) -> list[str]:
    """Every problem `load_text` reports, as the user reads them; each must be one line."""
    with pytest.raises(ManifestError) as info:
        load_text(textwrap.dedent(text), FILE)
    lines = [str(p) for p in info.value.problems]
    assert lines, "a ManifestError must carry problems"
    for line in lines:
        assert "\n" not in line and "\r" not in line
    return lines


def only_problem(text: str, prefix: str) -> str:
    """The single problem of `text`, which must start with `prefix`."""
    lines = problems_of(text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def loads(text: str) -> Manifests:
    return load_text(textwrap.dedent(text), FILE)


NET_A = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: a}
spec:
  ipam:
    - subnet: 10.0.0.0/24
"""


# --- the models on their own ---


def test_python_accepts_snake_case_and_dumps_camel_case() -> None:
    pool = IpamPool(subnet=IPv4Network("10.0.0.0/24"), ip_range=IPv4Network("10.0.0.128/25"))
    assert pool.ip_range == IPv4Network("10.0.0.128/25")
    assert pool.model_dump()["ipRange"] == IPv4Network("10.0.0.128/25")
    same = IpamPool.model_validate({"subnet": "10.0.0.0/24", "ipRange": "10.0.0.128/25"})
    assert same == pool


def test_models_are_frozen_and_forbid_extra_fields() -> None:
    network = Network(metadata=Metadata(name="a"))
    with pytest.raises(ValidationError):
        network.spec = NetworkSpec()
    with pytest.raises(ValidationError):
        NetworkSpec.model_validate({"colour": "blue"})


def test_effective_gateway_defaults_to_first_usable_address() -> None:
    assert IpamPool(subnet=IPv4Network("10.0.0.0/24")).effective_gateway() == ip_address("10.0.0.1")
    explicit = IpamPool.model_validate({"subnet": "fd00::/64", "gateway": "fd00::fe"})
    assert explicit.effective_gateway() == IPv6Address("fd00::fe")


def test_non_canonical_subnet_names_the_canonical_form() -> None:
    with pytest.raises(ValidationError, match=r"write the canonical form 10\.89\.0\.0/24"):
        IpamPool.model_validate({"subnet": "10.89.0.1/24"})


def test_subnet_without_prefix_is_refused() -> None:
    with pytest.raises(ValidationError, match="CIDR form"):
        IpamPool.model_validate({"subnet": "10.89.0.0"})


def test_mac_address_is_normalised_to_lowercase_colon_form() -> None:
    spec = EndpointSpec.model_validate({"network": "a", "macAddress": "02-42-0A-59-00-0A"})
    assert spec.mac_address == "02:42:0a:59:00:0a"


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"])
def test_mac_address_must_be_unicast(mac: str) -> None:
    with pytest.raises(ValidationError):
        EndpointSpec.model_validate({"network": "a", "macAddress": mac})


def test_mac_address_error_is_located() -> None:
    only_problem(
        """\
        apiVersion: cnm/v1
        kind: Endpoint
        metadata: {name: e}
        spec:
          network: a
          macAddress: "01:00:5e:00:00:01"
        """,
        "m.yaml:6: Endpoint/e: spec.macAddress: 01:00:5e:00:00:01 is a multicast MAC address",
    )


def test_static_addresses_must_match_their_family() -> None:
    with pytest.raises(ValidationError, match="not an IPv4 address"):
        EndpointSpec.model_validate({"network": "a", "ipv4Address": "fd00::1"})
    with pytest.raises(ValidationError, match="not an IPv6 address"):
        EndpointSpec.model_validate({"network": "a", "ipv6Address": "10.0.0.1"})


#: (kind, spec in YAML flow form holding one name-like value, its path): a valid name
#: with a newline after it (a YAML block scalar or "...\n") is refused, not kept
NEWLINE_TAILED = [
    ("Network", 'metadata: {name: "web\\n"}', "metadata.name"),
    ("Network", 'metadata: {name: n}\nspec: {bridge: "br0\\n"}', "spec.bridge"),
    ("Network", 'metadata: {name: n}\nspec: {driver: macvlan, parent: "eth0\\n"}',
     "spec.parent"),
    ("Sandbox", 'metadata: {name: s}\nspec: {netns: "ns\\n"}', "spec.netns"),
    ("Sandbox", 'metadata: {name: s}\nspec: {hostname: "h\\n"}', "spec.hostname"),
    ("Sandbox", 'metadata: {name: s}\nspec: {domainname: "d.org\\n"}', "spec.domainname"),
    ("Sandbox", 'metadata: {name: s}\nspec: {dns: {search: ["d.org\\n"]}}', "spec.dns.search.0"),
    ("Sandbox", 'metadata: {name: s}\nspec: {dns: {options: ["ndots:1\\n"]}}',
     "spec.dns.options.0"),
    ("Endpoint", 'metadata: {name: e}\nspec: {network: n, ifname: "eth0\\n"}', "spec.ifname"),
    ("Endpoint", 'metadata: {name: e}\nspec: {network: n, aliases: ["www\\n"]}',
     "spec.aliases.0"),
    ("Endpoint", 'metadata: {name: e}\nspec: {network: n, macAddress: "02:42:0a:59:00:0a\\n"}',
     "spec.macAddress"),
]


@pytest.mark.parametrize(("kind", "body", "path"), NEWLINE_TAILED,
                         ids=[p for *_, p in NEWLINE_TAILED])
def test_a_name_with_a_newline_after_it_is_refused(kind: str, body: str, path: str) -> None:
    network = "---\napiVersion: cnm/v1\nkind: Network\nmetadata: {name: n}\n"
    text = f"apiVersion: cnm/v1\nkind: {kind}\n{body}\n" + (network if kind == "Endpoint" else "")
    lines = problems_of(text)
    assert len(lines) == 1 and f": {path}: " in lines[0], lines


def test_the_python_api_refuses_a_name_with_a_newline_after_it() -> None:
    from reconciler.api import InvalidNameError, object_name

    assert object_name("network", "web") == "web"
    with pytest.raises(InvalidNameError):
        object_name("network", "web\n")


def test_metadata_name_must_be_a_dns_label() -> None:
    only_problem(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata:
          name: Web_1
        """,
        'm.yaml:4: Network/Web_1: metadata.name: "Web_1" is not a DNS label '
        "(lowercase letters, digits and '-', at most 63)",
    )
    with pytest.raises(ValidationError):
        Metadata(name="a" * 64)


@pytest.mark.parametrize(("mtu", "ok"), [(67, False), (68, True), (65535, True), (65536, False)])
def test_mtu_range(mtu: int, ok: bool) -> None:
    if ok:
        assert NetworkSpec(mtu=mtu).mtu == mtu
    else:
        with pytest.raises(ValidationError):
            NetworkSpec(mtu=mtu)


@pytest.mark.parametrize("port", [0, 65536])
def test_port_range(port: int) -> None:
    with pytest.raises(ValidationError):
        PortMapping(container_port=port, host_port=80)
    with pytest.raises(ValidationError):
        PortMapping(container_port=80, host_port=port)


def test_defaults() -> None:
    network = Network(metadata=Metadata(name="front"))
    assert network.api_version == "cnm/v1" and network.kind == "Network"
    assert network.spec.driver == "bridge" and network.spec.icc and network.spec.masquerade
    endpoint = Endpoint(metadata=Metadata(name="e"), spec=EndpointSpec(network="front"))
    # None: interface_defaults picks eth0, eth1, ... and the default route's endpoint
    assert endpoint.spec.ifname is None and endpoint.spec.gateway is None
    assert endpoint.spec.gw_priority == 0
    assert PortMapping(container_port=80, host_port=8080).protocol == "tcp"
    assert SandboxSpec().dns is None and DnsConfig().servers == []


def test_derived_names_and_keys() -> None:
    network = Network(metadata=Metadata(name="front"))
    assert network.bridge_name == "br-front"
    assert network.key == ResourceKey("Network", "front")
    named = Network(metadata=Metadata(name="front"), spec=NetworkSpec(bridge="brx"))
    assert named.bridge_name == "brx"
    long_name = Network(metadata=Metadata(name="a-rather-long-network-name"))
    assert len(long_name.bridge_name) <= 15
    sandbox = Sandbox(metadata=Metadata(name="web"))
    assert (sandbox.netns_name, sandbox.effective_hostname) == ("web", "web")
    custom = Sandbox(metadata=Metadata(name="web"), spec=SandboxSpec(netns="ns", hostname="h"))
    assert (custom.netns_name, custom.effective_hostname) == ("ns", "h")
    assert custom.key == ResourceKey("Sandbox", "web")


# --- the Manifests collection ---


def _objects() -> list[tuple[Network | Sandbox | Endpoint, ManifestSource]]:
    src = ManifestSource("api", 1, None)
    return [
        (
            Endpoint(
                metadata=Metadata(name="z"),
                spec=EndpointSpec(network="n", sandbox="s", ifname="eth1"),
            ),
            src,
        ),
        (Endpoint(metadata=Metadata(name="b"), spec=EndpointSpec(network="n", sandbox="s")), src),
        (Network(metadata=Metadata(name="n")), src),
        (Sandbox(metadata=Metadata(name="s")), src),
    ]


def test_manifests_build_sorts_by_name_and_answers_helpers() -> None:
    manifests = Manifests.build(_objects())
    assert list(manifests.endpoints) == ["b", "z"]
    assert [e.metadata.name for e in manifests.endpoints_of_network("n")] == ["b", "z"]
    assert [e.metadata.name for e in manifests.endpoints_of_sandbox("s")] == ["b", "z"]
    assert manifests.endpoints_of_network("other") == []
    assert manifests.source_of(ResourceKey("Network", "n")) == ManifestSource("api", 1, None)
    assert not manifests.is_empty()
    assert Manifests().is_empty()
    assert validate(manifests) == []


def test_manifests_build_does_not_validate() -> None:
    src = ManifestSource("api", 1, None)
    ghost = Endpoint(metadata=Metadata(name="e"), spec=EndpointSpec(network="ghost"))
    manifests = Manifests.build([(ghost, src)])
    assert list(manifests.endpoints) == ["e"]
    problems = validate(manifests)
    assert [str(p) for p in problems] == [
        'api: Endpoint/e: spec.network: unknown network "ghost"; define a Network of that name '
        "(no Network is defined)"
    ]


def test_validate_uses_field_lines_and_falls_back_to_parent_then_document() -> None:
    src = ManifestSource("f.yaml", 2, 10)
    ghost = Endpoint(metadata=Metadata(name="e"), spec=EndpointSpec(network="ghost"))
    manifests = Manifests.build([(ghost, src)])
    key = ghost.key
    assert validate(manifests, field_lines={(key, "spec.network"): 14})[0].line == 14
    assert validate(manifests, field_lines={(key, "spec"): 13})[0].line == 13
    assert validate(manifests)[0].line == 10


# --- JSON Schema ---


def test_json_schema_covers_all_kinds_with_camel_case_names() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    refs = {choice["$ref"] for choice in schema["oneOf"]}
    assert refs == {"#/$defs/Network", "#/$defs/Sandbox", "#/$defs/Endpoint"}
    assert schema["discriminator"]["propertyName"] == "kind"
    defs = schema["$defs"]
    assert "ipRange" in defs["IpamPool"]["properties"]
    assert "hostIP" in defs["PortMapping"]["properties"]
    assert "extraHosts" in defs["SandboxSpec"]["properties"]
    assert defs["Endpoint"]["required"] == ["apiVersion", "kind", "metadata", "spec"]
    assert defs["Network"]["required"] == ["apiVersion", "kind", "metadata"]
    assert defs["Network"]["additionalProperties"] is False


def test_json_schema_is_deterministic() -> None:
    assert json.dumps(json_schema()) == json.dumps(json_schema())


# --- cross-object rules ---


def test_duplicate_name_in_one_file_names_the_first() -> None:
    only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Network
metadata: {name: a}
""",
        "m.yaml:8: Network/a: metadata.name: duplicate name: Network/a is already defined at "
        "m.yaml:1",
    )


def test_same_name_in_different_kinds_is_fine() -> None:
    loads(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: a}
"""
    )


ENDPOINT_REFS = """\
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec:
  network: ghost
  sandbox: nowhere
"""


def test_unknown_network_and_sandbox() -> None:
    lines = problems_of(ENDPOINT_REFS)
    assert lines == [
        'm.yaml:5: Endpoint/e: spec.network: unknown network "ghost"; define a Network of that '
        "name (no Network is defined)",
        'm.yaml:6: Endpoint/e: spec.sandbox: unknown sandbox "nowhere"; define a Sandbox of '
        "that name (no Sandbox is defined)",
    ]


def test_unknown_network_lists_known_ones() -> None:
    problem = only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec: {network: b}
""",
        'm.yaml:11: Endpoint/e: spec.network: unknown network "b"',
    )
    assert "(known: a)" in problem


def test_overlapping_subnets_between_networks() -> None:
    only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Network
metadata: {name: b}
spec:
  ipam:
    - subnet: 10.0.0.128/25
""",
        "m.yaml:13: Network/b: spec.ipam.0.subnet: subnet 10.0.0.128/25 overlaps subnet "
        "10.0.0.0/24 of Network/a (spec.ipam.0, m.yaml:6)",
    )


def test_overlapping_subnets_within_one_network() -> None:
    only_problem(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: a}
        spec:
          ipam:
            - subnet: 10.0.0.0/16
            - subnet: fd00::/64
            - subnet: 10.0.5.0/24
        """,
        "m.yaml:8: Network/a: spec.ipam.2.subnet: subnet 10.0.5.0/24 overlaps subnet "
        "10.0.0.0/16 (spec.ipam.0) of the same network",
    )


def test_ipv4_and_ipv6_pools_never_overlap() -> None:
    loads(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: a}
        spec:
          ipam: [{subnet: 10.0.0.0/8}, {subnet: "::/0"}]
        """
    )


def _pool(extra: str) -> str:
    return (
        """\
apiVersion: cnm/v1
kind: Network
metadata: {name: a}
spec:
  ipam:
    - subnet: 10.0.0.0/24
"""
        + extra
    )


@pytest.mark.parametrize(
    ("extra", "prefix"),
    [
        (
            "      gateway: 10.0.1.1\n",
            "m.yaml:7: Network/a: spec.ipam.0.gateway: gateway 10.0.1.1 is outside subnet "
            "10.0.0.0/24; use a host address such as 10.0.0.1",
        ),
        (
            "      gateway: fd00::1\n",
            "m.yaml:7: Network/a: spec.ipam.0.gateway: gateway fd00::1 is outside subnet",
        ),
        (
            "      gateway: 10.0.0.0\n",
            "m.yaml:7: Network/a: spec.ipam.0.gateway: gateway 10.0.0.0 is the network address",
        ),
        (
            "      gateway: 10.0.0.255\n",
            "m.yaml:7: Network/a: spec.ipam.0.gateway: gateway 10.0.0.255 is the broadcast address",
        ),
        (
            "      ipRange: 10.0.1.0/25\n",
            "m.yaml:7: Network/a: spec.ipam.0.ipRange: ipRange 10.0.1.0/25 is outside subnet "
            "10.0.0.0/24",
        ),
        (
            "      auxAddresses:\n        router: 10.0.9.2\n",
            "m.yaml:8: Network/a: spec.ipam.0.auxAddresses.router: auxAddress router=10.0.9.2 "
            "is outside subnet 10.0.0.0/24",
        ),
    ],
)
def test_pool_addresses_must_be_inside_their_subnet(extra: str, prefix: str) -> None:
    only_problem(_pool(extra), prefix)


def test_subnet_too_small_for_a_network() -> None:
    only_problem(
        NET_A.replace("10.0.0.0/24", "10.0.0.0/31"),
        "m.yaml:6: Network/a: spec.ipam.0.subnet: subnet 10.0.0.0/31 has no room",
    )


NETWORK_FOR_STATIC = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: a}
spec:
  ipam:
    - subnet: 10.0.0.0/24
      gateway: 10.0.0.254
      auxAddresses: {router: 10.0.0.2}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec:
  network: a
"""


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "ipv4Address",
            "10.1.0.5",
            "10.1.0.5 is not inside an IPv4 pool of Network/a (subnets: 10.0.0.0/24)",
        ),
        (
            "ipv6Address",
            "fd00::5",
            "fd00::5 cannot be used: Network/a has no IPv6 pool",
        ),
        ("ipv4Address", "10.0.0.254", "10.0.0.254 is the gateway of Network/a"),
        (
            "ipv4Address",
            "10.0.0.2",
            "10.0.0.2 is reserved by auxAddresses.router of Network/a",
        ),
        ("ipv4Address", "10.0.0.0", "10.0.0.0 is the network address of 10.0.0.0/24"),
        ("ipv4Address", "10.0.0.255", "10.0.0.255 is the broadcast address of 10.0.0.0/24"),
    ],
)
def test_static_address_rules(field: str, value: str, message: str) -> None:
    only_problem(
        NETWORK_FOR_STATIC + f"  {field}: {value}\n",
        f"m.yaml:15: Endpoint/e: spec.{field}: {message}",
    )


def test_static_address_equal_to_default_gateway() -> None:
    only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec: {network: a, ipv4Address: 10.0.0.1}
""",
        "m.yaml:11: Endpoint/e: spec.ipv4Address: 10.0.0.1 is the gateway of Network/a",
    )


def test_two_endpoints_with_one_address() -> None:
    only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e1}
spec: {network: a, ipv4Address: 10.0.0.9}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e2}
spec:
  network: a
  ipv4Address: 10.0.0.9
""",
        "m.yaml:18: Endpoint/e2: spec.ipv4Address: 10.0.0.9 is already used by Endpoint/e1 "
        "(m.yaml:11) on Network/a",
    )


NET_A_DUAL = NET_A + "    - subnet: fd00:a::/64\n"  # ports may be published on both families


def _ports(first: str, second: str) -> str:
    return (
        NET_A_DUAL
        + f"""\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: e1}}
spec:
  network: a
  ports:
    - {{containerPort: 80, hostPort: 8080{first}}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: e2}}
spec:
  network: a
  ports:
    - {{containerPort: 80, hostPort: 8080{second}}}
"""
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("", ""),
        ("", ", hostIP: 192.0.2.1"),
        ("", ", hostIP: '2001:db8::1'"),
        (", hostIP: 0.0.0.0", ", hostIP: 10.1.2.3"),
        (", hostIP: 10.1.2.3", ", hostIP: 10.1.2.3"),
        (", hostIP: '::'", ", hostIP: '2001:db8::1'"),
        (", protocol: udp", ", protocol: udp, hostIP: 0.0.0.0"),
    ],
)
def test_host_port_published_twice(first: str, second: str) -> None:
    only_problem(
        _ports(first, second),
        "m.yaml:23: Endpoint/e2: spec.ports.0.hostPort: host port ",
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (", hostIP: 0.0.0.0", ", hostIP: '::'"),
        (", hostIP: 10.1.2.3", ", hostIP: 10.1.2.4"),
        (", protocol: tcp", ", protocol: udp"),
    ],
)
def test_host_port_that_does_not_clash(first: str, second: str) -> None:
    loads(_ports(first, second))


def test_host_port_twice_in_one_endpoint() -> None:
    only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec:
  network: a
  ports:
    - {containerPort: 80, hostPort: 8080}
    - {containerPort: 81, hostPort: 8080}
""",
        "m.yaml:15: Endpoint/e: spec.ports.1.hostPort: host port tcp/8080 on all addresses is "
        "already published by Endpoint/e (spec.ports.0, m.yaml:14)",
    )


@pytest.mark.parametrize("bridge", ["br-much-too-long", "br x", "br/x", ".."])
def test_explicit_bridge_name_must_be_a_valid_ifname(bridge: str) -> None:
    only_problem(
        f"""\
apiVersion: cnm/v1
kind: Network
metadata: {{name: a}}
spec:
  bridge: "{bridge}"
""",
        f'm.yaml:5: Network/a: spec.bridge: "{bridge}" is not a valid interface name',
    )


def test_endpoint_ifname_must_be_valid() -> None:
    only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec:
  network: a
  ifname: eth0-far-too-long
""",
        'm.yaml:13: Endpoint/e: spec.ifname: "eth0-far-too-long" is not a valid interface name',
    )


@pytest.mark.parametrize("netns", ["../etc", "a/b", "..", ".hidden", "x" * 64])
def test_netns_name_must_be_safe(netns: str) -> None:
    only_problem(
        f"""\
apiVersion: cnm/v1
kind: Sandbox
metadata: {{name: s}}
spec:
  netns: "{netns}"
""",
        "m.yaml:5: Sandbox/s: spec.netns: ",
    )


def test_two_networks_with_one_bridge_name_blame_the_explicit_one() -> None:
    only_problem(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: b}
        ---
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: c}
        spec:
          bridge: br-b
        """,
        "m.yaml:9: Network/c: spec.bridge: bridge name br-b is also used by Network/b",
    )


def test_two_sandboxes_with_one_netns() -> None:
    only_problem(
        """\
        apiVersion: cnm/v1
        kind: Sandbox
        metadata: {name: b}
        spec:
          netns: web
        ---
        apiVersion: cnm/v1
        kind: Sandbox
        metadata: {name: web}
        """,
        "m.yaml:5: Sandbox/b: spec.netns: netns name web is also used by Sandbox/web",
    )


SANDBOX_S = """\
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: s}
"""


def test_two_endpoints_in_one_sandbox_with_one_ifname() -> None:
    only_problem(
        NET_A
        + SANDBOX_S
        + """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e1}
spec: {network: a, sandbox: s, ifname: eth0}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e2}
spec:
  network: a
  sandbox: s
  ifname: eth0
""",
        "m.yaml:23: Endpoint/e2: spec.ifname: ifname eth0 is already used in Sandbox/s by "
        "Endpoint/e1 (m.yaml:15); set a distinct spec.ifname",
    )


def _two_gateways(second_network: str, second_subnet: str) -> str:
    return (
        NET_A
        + f"""\
---
apiVersion: cnm/v1
kind: Network
metadata: {{name: {second_network}}}
spec:
  ipam: [{{subnet: "{second_subnet}"}}]
"""
        + SANDBOX_S
        + f"""\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: e1}}
spec: {{network: a, sandbox: s, gateway: true}}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {{name: e2}}
spec:
  network: {second_network}
  sandbox: s
  gateway: true
"""
    )


def test_at_most_one_gateway_per_sandbox_and_family() -> None:
    only_problem(
        _two_gateways("b", "10.1.0.0/24"),
        "m.yaml:29: Endpoint/e2: spec.gateway: Endpoint/e1 (m.yaml:21) already carries the "
        "IPv4 default route of Sandbox/s; set gateway: true on one endpoint only, or use "
        "gwPriority",
    )


def test_one_gateway_per_family_is_fine() -> None:
    loads(_two_gateways("b", "fd00:1::/64"))


def _sandbox(spec: str) -> str:
    return "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: s}\nspec:\n" + spec


@pytest.mark.parametrize(
    ("spec", "prefix"),
    [
        ("  hostname: web_1\n", 'm.yaml:5: Sandbox/s: spec.hostname: "web_1" is not a valid DNS'),
        ("  hostname: " + "a" * 65 + "\n", "m.yaml:5: Sandbox/s: spec.hostname: "),
        ("  domainname: -bad.org\n", "m.yaml:5: Sandbox/s: spec.domainname: "),
        (
            "  dns: {search: [ok.org, 'bad domain']}\n",
            'm.yaml:5: Sandbox/s: spec.dns.search.1: "bad domain" is not a valid DNS name',
        ),
        (
            "  dns:\n    options: ['ndots:1\\nnameserver 6.6.6.6']\n",
            "m.yaml:6: Sandbox/s: spec.dns.options.0: ",
        ),
        (
            "  extraHosts: [db.local]\n",
            'm.yaml:5: Sandbox/s: spec.extraHosts.0: "db.local" is not name:ip',
        ),
        (
            "  extraHosts:\n    - ok:10.0.0.1\n    - 'bad name:10.0.0.1'\n",
            'm.yaml:7: Sandbox/s: spec.extraHosts.1: host name in "bad name:10.0.0.1"',
        ),
        (
            "  extraHosts: ['db:10.0.0.300']\n",
            'm.yaml:5: Sandbox/s: spec.extraHosts.0: "10.0.0.300" in "db:10.0.0.300" is not an IP',
        ),
    ],
)
def test_sandbox_names_must_be_valid(spec: str, prefix: str) -> None:
    only_problem(_sandbox(spec), prefix)


def test_extra_hosts_accept_ipv6() -> None:
    manifests = loads(_sandbox("  extraHosts: ['db6.local:fd00::20', 'db:10.0.0.1']\n"))
    assert manifests.sandboxes["s"].spec.extra_hosts == ["db6.local:fd00::20", "db:10.0.0.1"]


def test_endpoint_aliases_must_be_dns_names() -> None:
    only_problem(
        NET_A
        + """\
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec:
  network: a
  aliases:
    - www
    - "not valid"
""",
        'm.yaml:15: Endpoint/e: spec.aliases.1: "not valid" is not a valid DNS name',
    )


def test_macvlan_needs_a_parent() -> None:
    only_problem(
        """\
apiVersion: cnm/v1
kind: Network
metadata: {name: a}
spec:
  driver: macvlan
""",
        "m.yaml:4: Network/a: spec.parent: a macvlan network needs spec.parent",
    )


@pytest.mark.parametrize("driver", ["null", "'null'", "host"])
def test_null_and_host_networks_take_no_ipam(driver: str) -> None:
    only_problem(
        f"""\
apiVersion: cnm/v1
kind: Network
metadata: {{name: a}}
spec:
  driver: {driver}
  ipam: [{{subnet: 10.0.0.0/24}}]
""",
        f"m.yaml:6: Network/a: spec.ipam: a {driver.strip(chr(39))} network takes no ipam",
    )


def test_endpoint_on_a_host_network_takes_no_address() -> None:
    only_problem(
        """\
apiVersion: cnm/v1
kind: Network
metadata: {name: h}
spec: {driver: host}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e}
spec: {network: h, ipv4Address: 10.0.0.5}
""",
        "m.yaml:9: Endpoint/e: spec.ipv4Address: Network/h uses the host driver",
    )


def test_a_host_mode_sandbox_joins_nothing_else() -> None:
    only_problem(
        """\
apiVersion: cnm/v1
kind: Network
metadata: {name: h}
spec: {driver: host}
---
apiVersion: cnm/v1
kind: Network
metadata: {name: b}
spec: {ipam: [{subnet: 10.0.0.0/24}]}
---
apiVersion: cnm/v1
kind: Sandbox
metadata: {name: s}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e1}
spec: {network: h, sandbox: s}
---
apiVersion: cnm/v1
kind: Endpoint
metadata: {name: e2}
spec: {network: b, sandbox: s, ifname: eth1}
""",
        "m.yaml:23: Endpoint/e2: spec.sandbox: Sandbox/s joins a host network (Endpoint/e1)",
    )


@pytest.mark.parametrize(("field", "value"), [("parent", "eth1"), ("mode", "vepa")])
def test_macvlan_fields_on_a_bridge_network(field: str, value: str) -> None:
    only_problem(
        f"""\
apiVersion: cnm/v1
kind: Network
metadata: {{name: a}}
spec:
  {field}: {value}
""",
        f"m.yaml:5: Network/a: spec.{field}: {field} is for macvlan networks only; remove it",
    )


def test_problems_of_a_python_built_object_have_no_line() -> None:
    src = ManifestSource("<api>", 1, None)
    network = Network(
        metadata=Metadata(name="n"),
        spec=NetworkSpec(ipam=[IpamPool(subnet=IPv4Network("10.0.0.0/24"))]),
    )
    endpoint = Endpoint(
        metadata=Metadata(name="e"),
        spec=EndpointSpec(network="n", ipv4_address=IPv4Address("10.9.0.1")),
    )
    problems = validate(Manifests.build([(network, src), (endpoint, src)]))
    assert [str(p) for p in problems] == [
        "<api>: Endpoint/e: spec.ipv4Address: 10.9.0.1 is not inside an IPv4 pool of Network/n "
        "(subnets: 10.0.0.0/24)"
    ]

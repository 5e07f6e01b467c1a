"""The loader: finding files, parsing YAML safely, and locating every problem at its line."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import loader
from reconciler.errors import ManifestError
from reconciler.loader import load, load_text
from reconciler.manifest_set import Manifests, ManifestSource
from reconciler.state import ResourceKey

REFERENCE = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "reference.yaml"

NETWORK = """\
apiVersion: cnm/v1
kind: Network
metadata: {name: NAME}
spec:
  ipam: [{subnet: SUBNET}]
"""


def network(name: str, subnet: str = "10.0.0.0/24") -> str:
    return NETWORK.replace("NAME", name).replace("SUBNET", subnet)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(paths: list[str], stdin: io.TextIOBase | None = None) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load(paths, stdin=stdin)  # type: ignore[arg-type]
    lines = [str(p) for p in info.value.problems]
    assert lines
    for line in lines:
        assert "\n" not in line and "\r" not in line
    return lines


def text_problems(text: str, name: str = "m.yaml") -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_text(textwrap.dedent(text), name)
    lines = [str(p) for p in info.value.problems]
    for line in lines:
        assert "\n" not in line and "\r" not in line
    return lines


def only(text: str, prefix: str) -> str:
    lines = text_problems(text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


# --- finding files ---


def test_directory_is_searched_recursively_sorted_skipping_hidden(tmp_path: Path) -> None:
    write(tmp_path / "b" / "sub" / "two.yml", network("two", "10.2.0.0/24"))
    write(tmp_path / "a.yaml", network("one", "10.1.0.0/24"))
    write(tmp_path / ".git" / "x.yaml", "not: [valid")
    write(tmp_path / ".swap.yaml", "not: [valid")
    write(tmp_path / "README.txt", "not: [valid")
    manifests = load([str(tmp_path)])
    assert list(manifests.networks) == ["one", "two"]
    assert manifests.source_of(ResourceKey("Network", "two")) == ManifestSource(
        str(tmp_path / "b" / "sub" / "two.yml"), 1, 1
    )


def test_explicit_file_is_read_whatever_its_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "net.txt", network("one"))
    assert list(load([str(path)]).networks) == ["one"]


def test_empty_directory_gives_empty_manifests(tmp_path: Path) -> None:
    assert load([str(tmp_path)]).is_empty()


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert problems_of([str(missing)]) == [f"{missing}: no such file or directory"]


def test_stdin_is_read_for_dash() -> None:
    manifests = load(["-"], stdin=io.StringIO(network("one")))
    assert manifests.source_of(ResourceKey("Network", "one")).file == "<stdin>"


def test_stdin_errors_are_named_stdin() -> None:
    lines = problems_of(["-"], stdin=io.StringIO("kind: Nope\n"))
    assert lines[0].startswith("<stdin>:1: ")


def test_binary_stdin_is_one_clear_problem() -> None:
    stream = io.TextIOWrapper(io.BytesIO(b"\x00\x01\x02"))
    assert problems_of(["-"], stdin=stream) == ["<stdin>: is a binary file, not YAML text"]


def test_problems_of_all_files_are_collected(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "kind: Nope\n")
    write(tmp_path / "b.yaml", "a: [\n")
    lines = problems_of([str(tmp_path)])
    assert len(lines) == 3
    assert lines[0].startswith(f"{tmp_path / 'a.yaml'}:1: apiVersion: required field is missing")
    assert lines[1].startswith(f'{tmp_path / "a.yaml"}:1: kind: unknown kind "Nope"')
    assert lines[2].startswith(f"{tmp_path / 'b.yaml'}:2: YAML syntax error: ")


def test_duplicate_names_across_files_name_both(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", network("one", "10.1.0.0/24"))
    second = write(tmp_path / "b.yaml", "# comment\n" + network("one", "10.2.0.0/24"))
    assert problems_of([str(tmp_path)]) == [
        f"{second}:2: Network/one: metadata.name: duplicate name: Network/one is already "
        f"defined at {first}:1; names must be unique per kind"
    ]


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (loader.MAX_FILE_BYTES + 1))
    assert problems_of([str(path)]) == [
        f"{path}: is larger than 10 MiB; split it into smaller files"
    ]


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00")
    assert problems_of([str(path)]) == [f"{path}: is a binary file, not YAML text"]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("kind: Réseau\n".encode("latin-1"))
    assert problems_of([str(path)]) == [
        f"{path}: is not UTF-8 text (invalid byte at offset 7); save it as UTF-8"
    ]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + network("one").encode())
    assert list(load([str(path)]).networks) == ["one"]


def test_reference_manifest_loads_cleanly() -> None:
    manifests = load([str(REFERENCE)])
    assert set(manifests.networks) == {"frontend", "backend"}
    assert set(manifests.sandboxes) == {"web1", "db1"}
    assert set(manifests.endpoints) == {"web1-front", "web1-back", "db1-back"}
    front = manifests.endpoints["web1-front"].spec
    assert front.mac_address == "02:42:0a:59:00:0a" and front.ports[0].host_ip is not None
    assert manifests.sandboxes["web1"].spec.dns is not None


# --- documents ---


def test_multi_document_file_skips_empty_documents() -> None:
    manifests = load_text(
        "# header comment\n---\n---\n# only a comment\n---\n" + network("one"), "m.yaml"
    )
    assert manifests.source_of(ResourceKey("Network", "one")) == ManifestSource("m.yaml", 3, 6)


def test_comment_only_file_is_empty() -> None:
    assert load_text("# nothing here\n", "m.yaml") == Manifests()


def test_document_that_is_not_a_mapping() -> None:
    assert text_problems("- a\n- b\n") == [
        "m.yaml:1: document 1 is a list, not a mapping with apiVersion, kind, metadata and spec"
    ]
    assert text_problems("---\n--- hello\n")[0].startswith(
        'm.yaml:2: document 2 is a scalar "hello", not a mapping'
    )


def test_missing_api_version() -> None:
    only(
        """\
        kind: Network
        metadata: {name: a}
        """,
        "m.yaml:1: Network/a: apiVersion: required field is missing; use apiVersion: cnm/v1",
    )


def test_wrong_api_version() -> None:
    only(
        """\
        apiVersion: cnm/v2
        kind: Network
        metadata: {name: a}
        """,
        'm.yaml:1: Network/a: apiVersion: "cnm/v2" is not supported; use cnm/v1',
    )


def test_missing_kind() -> None:
    only(
        """\
        apiVersion: cnm/v1
        metadata: {name: a}
        """,
        "m.yaml:1: kind: required field is missing; use one of Network, Sandbox, Endpoint",
    )


def test_unknown_kind_suggests_the_right_one() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: network
        metadata: {name: a}
        """,
        'm.yaml:2: kind: unknown kind "network"; use one of Network, Sandbox, Endpoint '
        "(did you mean Network?)",
    )


def test_missing_metadata_and_endpoint_spec() -> None:
    assert text_problems(
        """\
        apiVersion: cnm/v1
        kind: Endpoint
        """
    ) == [
        "m.yaml:1: metadata: required field is missing",
        "m.yaml:1: spec: required field is missing",
    ]


def test_missing_required_field_points_at_its_parent() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Endpoint
        metadata: {name: e}
        spec:
          ifname: eth1
        """,
        "m.yaml:4: Endpoint/e: spec.network: required field is missing",
    )


def test_nested_error_is_at_the_line_of_its_field() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: a}
        spec:
          ipam:
            - subnet: 10.0.0.0/24
            - subnet: 10.1.0.0/24
              gateway: 10.1.0.1/24
        """,
        'm.yaml:8: Network/a: spec.ipam.1.gateway: "10.1.0.1/24" is not an IP address',
    )


def test_wrong_type_says_what_is_expected() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: a}
        spec:
          mtu: big
        """,
        'm.yaml:5: Network/a: spec.mtu: expected an integer, got "big"',
    )
    only(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: a}
        spec: [1]
        """,
        "m.yaml:4: Network/a: spec: expected a mapping, got [1]",
    )


def test_unquoted_boolean_in_a_string_field_says_quote_it() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Sandbox
        metadata: {name: s}
        spec:
          hostname: yes
        """,
        "m.yaml:5: Sandbox/s: spec.hostname: expected a string, got true; quote it",
    )


def test_unknown_field_lists_allowed_and_suggests() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: {name: a}
        spec:
          ipam:
            - subnet: 10.0.0.0/24
              iprange: 10.0.0.0/25
        """,
        'm.yaml:7: Network/a: spec.ipam.0.iprange: unknown field "iprange"; allowed here: '
        "subnet, gateway, ipRange, auxAddresses (did you mean ipRange?)",
    )


def test_snake_case_is_not_accepted_in_yaml() -> None:
    line = only(
        """\
        apiVersion: cnm/v1
        kind: Endpoint
        metadata: {name: e}
        spec:
          network: a
          ipv4_address: 10.0.0.5
        """,
        'm.yaml:6: Endpoint/e: spec.ipv4_address: unknown field "ipv4_address"',
    )
    assert "(did you mean ipv4Address?)" in line


def test_literal_values_list_the_allowed_ones() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Endpoint
        metadata: {name: e}
        spec:
          network: a
          ports: [{containerPort: 80, hostPort: 80, protocol: sctp}]
        """,
        'm.yaml:6: Endpoint/e: spec.ports.0.protocol: "sctp" is not allowed; use one of '
        "'tcp' or 'udp'",
    )


def test_schema_errors_suppress_cross_object_noise() -> None:
    lines = text_problems(
        network("a").replace("10.0.0.0/24", "10.0.0.1/24")
        + "---\napiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: e}\nspec: {network: a}\n"
    )
    assert len(lines) == 1 and "host bits set" in lines[0]


# --- YAML hazards ---


def test_duplicate_mapping_key_names_both_lines() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata:
          name: a
        spec:
          mtu: 1500
          mtu: 9000
        """,
        'm.yaml:7: Network/a: spec.mtu: duplicate key "mtu" (first at line 6); keep only one',
    )


def test_aliases_are_refused() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata: &meta {name: a}
        spec:
          other: *meta
        """,
        "m.yaml:5: YAML aliases (*name) are not supported; repeat the value",
    )


def test_billion_laughs_is_refused_quickly() -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for index in range(1, 10):
        bomb += (
            f"{chr(97 + index)}: &{chr(97 + index)} ["
            + ",".join([f"*{chr(96 + index)}"] * 9)
            + "]\n"
        )
    lines = text_problems(bomb)
    assert lines == ["m.yaml:2: YAML aliases (*name) are not supported; repeat the value"]


def test_node_count_is_capped() -> None:
    text = "a: [" + "1," * loader.MAX_NODES + "1]\n"
    assert text_problems(text) == [
        f"m.yaml:1: more than {loader.MAX_NODES} YAML nodes; split the file"
    ]


def test_nesting_depth_is_capped() -> None:
    depth = loader.MAX_DEPTH + 1
    assert text_problems("[" * depth + "]" * depth) == [
        f"m.yaml:1: YAML nested deeper than {loader.MAX_DEPTH} levels"
    ]
    # Far deeper, the YAML parser may refuse before cnm counts (libyaml has its own cap,
    # in its own words, since PyYAML 6.0.4): still one problem at the file's line.
    lines = text_problems("[" * 5000 + "]" * 5000)
    assert len(lines) == 1 and lines[0].startswith("m.yaml:1: "), lines


def test_text_too_large() -> None:
    lines = text_problems("#" * (loader.MAX_FILE_BYTES + 1))
    assert lines == ["m.yaml: is larger than 10 MiB; split it into smaller files"]


def test_syntax_error_has_its_line() -> None:
    lines = text_problems("apiVersion: cnm/v1\nkind: Network\nmetadata: {name: a\n")
    assert len(lines) == 1 and lines[0].startswith("m.yaml:4: YAML syntax error: ")


def test_control_characters_are_one_line_problem() -> None:
    lines = text_problems("# fine\nkind: Network\x07\n")
    assert lines == ["m.yaml:2: character #x0007 is not allowed in YAML; remove it"]


@pytest.mark.parametrize(
    "tagged", ["!!python/object:os.system x", "!custom x", "!!binary aGVsbG8=", "!!set {a}"]
)
def test_unsupported_tags_are_refused(tagged: str) -> None:
    only(
        f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s}}\nspec:\n  hostname: {tagged}\n",
        "m.yaml:5: Sandbox/s: spec.hostname: unsupported YAML tag",
    )


def test_non_string_key_is_refused() -> None:
    only(
        """\
        apiVersion: cnm/v1
        kind: Network
        metadata:
          name: a
          labels: {1: x}
        """,
        'm.yaml:5: Network/a: metadata.labels: mapping key "1" must be a string; quote it',
    )


def test_mac_address_is_not_read_as_base_60() -> None:
    manifests = load_text(
        network("a")
        + "---\napiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: e}\n"
        + "spec: {network: a, macAddress: 12:34:56:12:34:56}\n",
        "m.yaml",
    )
    assert manifests.endpoints["e"].spec.mac_address == "12:34:56:12:34:56"


def test_odd_names_stay_on_one_line() -> None:
    lines = text_problems('apiVersion: cnm/v1\nkind: Network\nmetadata: {name: "a\\nb"}\n')
    assert lines == [
        'm.yaml:3: Network/"a\\nb": metadata.name: "a\\nb" is not a DNS label (lowercase '
        "letters, digits and '-', at most 63)"
    ]


def test_huge_integer_does_not_crash() -> None:
    lines = text_problems(network("a") + "  mtu: " + "9" * 5000 + "\n")
    assert len(lines) == 1 and lines[0].startswith("m.yaml:6: Network/a: spec.mtu: ")


# --- never anything but ManifestError ---

YAMLISH = st.lists(
    st.sampled_from(
        [
            "apiVersion: cnm/v1\n",
            "kind: Network\n",
            "kind: Endpoint\n",
            "kind: Sandbox\n",
            "metadata:\n",
            "  name: a\n",
            "metadata: {name: b}\n",
            "spec:\n",
            "  ipam:\n",
            "    - subnet: 10.0.0.0/24\n",
            "  network: a\n",
            "  sandbox: b\n",
            "---\n",
            "- x\n",
            "  mtu: 1500\n",
            "&a x\n",
            "*a\n",
            "[",
            "]",
            "{",
            "}",
            ": ",
            "\t",
            "'",
            '"',
            "!!str ",
            "  ports: [{containerPort: 80, hostPort: 80}]\n",
            "  ipv4Address: 10.0.0.5\n",
            "  netns: ../x\n",
            "  gateway: 10.0.0.1\n",
            "\x00",
            "\x85",
            "\ufeff",
            "#\n",
            "? ",
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(YAMLISH, st.text(max_size=200)))
def test_any_text_gives_manifests_or_manifest_error(text: str) -> None:
    try:
        load_text(text, "fuzz.yaml")
    except ManifestError as error:
        assert all("\n" not in str(p) for p in error.problems)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_manifests_or_manifest_error(data: bytes) -> None:
    try:
        load(["-"], stdin=io.TextIOWrapper(io.BytesIO(data)))
    except ManifestError as error:
        assert all("\n" not in str(p) for p in error.problems)

"""Hostile and broken input (issue 5): never a traceback, always exit 1 with `file:line`
and the object, one line per problem, nothing that could mangle a terminal.

Property-based over the manifest schema (generated from `cnm schema`), over
mutations of it, over YAML text tricks and over raw bytes; plus a fixed corpus
of known-nasty inputs and every wrong type at every field of the reference
manifest. These run `cnm validate` in-process; tests/kernel/test_hostile_apply.py
sends the same inputs through `cnm apply` and checks the kernel is untouched.
Budgets scale with CNM_FUZZ_SCALE (see tests/hostile.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from counts import record_count
from hostile import (
    _paths,
    _replace,
    all_named,
    budget,
    check_refusal,
    dump,
    hostile_texts,
    mutated_documents,
    run_cli,
    schema_documents,
    spliced_bytes,
)
from hypothesis import given
from hypothesis import strategies as st

REFERENCE = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "reference.yaml"


def _validate_file(path: Path, *, objects_known: bool = False) -> int:
    code, out, err = run_cli("validate", "-f", str(path))
    if code != 0:
        check_refusal(code, out, err, [str(path)], objects_known=objects_known)
    return code


def _fuzz_validate(tmp_path: Path, inputs: st.SearchStrategy[Any], counted_as: str) -> list[int]:
    """`cnm validate` of each input written to a file: documents (dumped as YAML), text or
    bytes. Every refusal must pass `check_refusal`. The exit codes, in order."""
    path, seen = tmp_path / "m.yaml", []

    @budget(100)
    @given(inputs)
    def check(value: list[Any] | str | bytes) -> None:
        if isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_text(value if isinstance(value, str) else dump(value))
        known = isinstance(value, list) and all_named(value)
        seen.append(_validate_file(path, objects_known=known))

    check()
    record_count(counted_as, len(seen))
    return seen


def test_fuzz_schema_generated_manifests(tmp_path: Path) -> None:
    seen = _fuzz_validate(tmp_path, schema_documents(),
                          "fuzz: schema-generated manifests (validate)")
    assert 1 in seen


def test_fuzz_mutated_manifests(tmp_path: Path) -> None:
    _fuzz_validate(tmp_path, mutated_documents(),
                   "fuzz: mutated manifests: wrong types, holes, extra keys, hostile strings")


def test_fuzz_yaml_text_tricks(tmp_path: Path) -> None:
    _fuzz_validate(tmp_path, hostile_texts(),
                   "fuzz: YAML tricks (duplicate keys, aliases, tags, nesting, truncation)")


def test_fuzz_raw_bytes(tmp_path: Path) -> None:
    _fuzz_validate(tmp_path, st.binary(max_size=4000) | spliced_bytes(),
                   "fuzz: raw bytes and bytes spliced into manifests")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


#: one value of each YAML type, plus the two nastiest strings
EVERY_TYPE: list[Any] = [None, True, 7, 1.5, "x", [], {"k": "v"}, "../../x", "\u202e"]


def test_every_wrong_type_at_every_field_of_the_reference_manifest(tmp_path: Path) -> None:
    """Systematic: each field (leaf or not) of each document, each value of WRONG_VALUES."""
    documents = list(yaml.safe_load_all(REFERENCE.read_text()))
    path = tmp_path / "m.yaml"
    tried = refused = 0
    accepted: list[str] = []
    for index, document in enumerate(documents):
        for field in _paths(document):
            old = document
            for part in field:
                old = old[part]
            for new in EVERY_TYPE:
                if _json_type(new) == _json_type(old) or field[-1:] == ("labels",):
                    continue
                changed = list(documents)
                changed[index] = _replace(document, field, new)
                path.write_text(dump(changed))
                tried += 1
                name_intact = all_named(changed)
                if _validate_file(path, objects_known=name_intact) == 1:
                    refused += 1
                elif new is not None:  # null means "the default" for optional fields
                    accepted.append(f"{'.'.join(map(str, field))} = {new!r}")
    assert not accepted, f"wrong types accepted: {accepted[:20]}"
    assert tried > 500
    record_count("wrong type at every field of the reference manifest", tried)


# --- a fixed corpus of known-nasty inputs ---------------------------------------------

NETWORK = ("apiVersion: cnm/v1\nkind: Network\nmetadata: {name: NAME}\n"
           "spec: {ipam: [{subnet: 10.0.0.0/24}]}\n")
A_NETWORK = NETWORK.replace("NAME", "a")
SANDBOX = "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: s}\nspec: {netns: NETNS}\n"
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(9)
)

CORPUS: dict[str, bytes] = {
    "billion laughs": BOMB.encode(),
    "alias to a mapping": b"apiVersion: cnm/v1\nkind: Network\nmetadata: &m {name: a}\nspec: *m\n",
    "merge key": b"base: &b {name: a}\nmetadata:\n  <<: *b\n",
    "ELF binary": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
    "UTF-16": NETWORK.replace("NAME", "a").encode("utf-16"),
    "latin-1": NETWORK.replace("NAME", "caf\xe9").encode("latin-1"),
    "lone surrogate escape": NETWORK.replace("NAME", '"\\ud800"').encode(),
    "NUL escape in a name": NETWORK.replace("NAME", '"a\\0b"').encode(),
    "bidi override in a name": NETWORK.replace("NAME", "a\u202eb").encode(),
    "bidi isolate in netns": SANDBOX.replace("NETNS", "x\u2066y").encode(),
    "escape sequence in netns": SANDBOX.replace("NETNS", '"\\e[2Jx"').encode(),
    "netns traversal": SANDBOX.replace("NETNS", "../../etc").encode(),
    "name traversal": NETWORK.replace("NAME", "../../etc/x").encode(),
    "sandbox name traversal": SANDBOX.replace("name: s}", "name: ../../run/x}")
    .replace("NETNS", "s").encode(),
    "netns absolute": SANDBOX.replace("NETNS", "/run/netns/x").encode(),
    "netns dot-dot": SANDBOX.replace("NETNS", '".."').encode(),
    "netns with slash": SANDBOX.replace("NETNS", "a/b").encode(),
    "netns newline": SANDBOX.replace("NETNS", '"a\\nb"').encode(),
    "hostname with newline": (SANDBOX.replace("NETNS", "s").rstrip("}\n")
                              + ', hostname: "h\\n127.0.0.1 evil"}\n').encode(),
    "huge name": NETWORK.replace("NAME", "n" * 5_000_000).encode(),
    "huge file": b"# " + b"x" * (10 * 1024 * 1024) + b"\n",
    "100 001 nodes": ("a: [" + "1," * 100_000 + "1]\n").encode(),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep mapping": b"a: " * 5000 + b"1\n",
    "duplicate keys": b"apiVersion: cnm/v1\nkind: Network\nkind: Sandbox\nmetadata: {name: a}\n",
    "duplicate names": (A_NETWORK + "---\n" + A_NETWORK).encode(),
    "python tag": b"!!python/object/apply:os.system ['id']\n",
    "unknown directive": b"%FOO bar\n---\na: 1\n",
    "only a scalar": b"just text\n",
    "a list": b"- 1\n- 2\n",
    "tabs": b"apiVersion: cnm/v1\n\tkind: Network\n",
    "CR line ends": NETWORK.replace("NAME", "a").replace("\n", "\r").encode(),
    "huge integer mtu": (A_NETWORK.rstrip("}\n") + ", mtu: 1" + "0" * 5000 + "}\n").encode(),
    "float mtu": (NETWORK.replace("NAME", "a").rstrip("}\n") + ", mtu: 1500.5}\n").encode(),
    "inf mtu": (NETWORK.replace("NAME", "a").rstrip("}\n") + ", mtu: .inf}\n").encode(),
    "timestamp name": NETWORK.replace("NAME", "2001-01-01").encode(),
    "boolean name": NETWORK.replace("NAME", "yes").encode(),
    "null document": b"---\n~\n---\nnull\n",
    "sixty-four documents of garbage": b"\n---\n".join([b"[1, {a: }"] * 64),
    "empty key": b'"": 1\napiVersion: cnm/v1\n',
    "complex key": b"? [a, b]\n: 1\n",
    "anchors without aliases": b"apiVersion: &v cnm/v1\nkind: &k Network\nmetadata: {name: a}\n",
    "escape sequence in a map key": (A_NETWORK.replace("10.0.0.0/24}", "10.0.0.0/24, "
                                                       'auxAddresses: {"\\e[2J": 10.9.0.1}}')
                                     .encode()),
    "record separator in a map key": (A_NETWORK.replace("10.0.0.0/24}", "10.0.0.0/24, "
                                                        'auxAddresses: {"a\\x1eb": 10.9.0.1}}')
                                      .encode()),
}


#: corpus entries that are odd but valid YAML and valid manifests
ACCEPTABLE = {"CR line ends", "anchors without aliases", "null document"}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_corpus(name: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(CORPUS[name])
    assert _validate_file(path) == (0 if name in ACCEPTABLE else 1)


def test_hostile_file_names_are_escaped(tmp_path: Path) -> None:
    """Names from the file system reach messages escaped, never raw."""
    directory = tmp_path / "d"
    directory.mkdir()
    for name in ("new\nline.yaml", "bidi\u202e.yaml", "esc\x1b[2J.yaml"):
        (directory / name).write_text("kind: Network\n")
    code, out, err = run_cli("validate", "-f", str(directory))
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 6  # two problems (apiVersion, metadata) per file, one line each
    assert any("new\\nline.yaml" in line for line in lines)
    assert any("bidi\\u202e.yaml" in line for line in lines)
    assert any("esc\\x1b[2J.yaml" in line for line in lines)


def test_special_files_in_a_manifest_directory_are_refused_not_read(tmp_path: Path) -> None:
    """A FIFO (which would block forever), a device and a socket named *.yaml."""
    import socket

    directory = tmp_path / "d"
    directory.mkdir()
    os.mkfifo(directory / "fifo.yaml")
    (directory / "zero.yaml").symlink_to("/dev/zero")
    (directory / "loop.yaml").symlink_to(directory / "loop.yaml")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(directory / "sock.yaml"))
    try:
        code, out, err = run_cli("validate", "-f", str(directory))
    finally:
        server.close()
    lines = check_refusal(code, out, err, [str(directory / n) for n in
                                             ("fifo.yaml", "zero.yaml", "loop.yaml", "sock.yaml")])
    assert len(lines) == 4, lines
    assert all("is not a regular file" in line or "cannot read" in line for line in lines), lines

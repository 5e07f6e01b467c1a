"""Hostile and broken manifests for the fuzz tests, and the checks every answer must pass.

Strategies:

* `schema_documents`: documents generated from `cnm schema` (the JSON Schema
  of cnm/v1) - every field of the right type, values from realistic pools
  and from `HOSTILE_STRINGS`;
* `mutated_documents`: those, with one wrong type, missing key, unknown key or
  hostile string put at a random place;
* `hostile_texts`: YAML text tricks on top (duplicate keys, anchors and
  aliases, tags, deep nesting, truncation, stray bytes);
* raw bytes: `st.binary()` and bytes spliced into a valid manifest.

Budgets: `budget(n)` runs n examples times $CNM_FUZZ_SCALE (default 1). The
long run (README: "Long fuzz runs") sets a larger scale.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from reconciler.manifest_schema import json_schema

SCALE = max(1, int(os.environ.get("CNM_FUZZ_SCALE", "1")))


def budget(examples: int) -> settings:
    """CI-sized unless CNM_FUZZ_SCALE asks for more."""
    return settings(
        max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1,
        suppress_health_check=list(HealthCheck), database=None,
    )


HOSTILE_STRINGS = [
    "", " ", "..", ".", "../", "../../etc/passwd", "/etc/shadow", "a/b", "a\\b", "~root",
    "-rf", "--yes", "$(reboot)", "`id`", "; rm -rf /", "a\nb", "a\rb", "\t", "\x07bell",
    "\x1b[31mred", "\x00nul", "\u202eevil\u202c", "\u2066iso\u2069", "\u200b", "\ufeffbom",
    "\u2028line", "e\u0301", "\U0001f4a9", "\ud7ff", "Ⅻ", "ＡＢＣ", "web1\u0430",  # Cyrillic a
    "x" * 16, "x" * 64, "x" * 256, "y" * 70_000, "0", "-1", "1e400", "NaN", "null", "~",
    "true", "no", "0x10", "1_000", "12:34:56", "2001-01-01", "eth0 ", " eth0", "ETH0",
    "lo", "all", "default", "10.0.0.0/8", "::", "255.255.255.255", "fe80::1%eth0",
    "10.89.0.10/24", "02:42:0a:59:00:0a", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01",
]

WRONG_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 10**30, float("inf"), "x", "", [], [1, "a"], {}, {"k": "v"},
    [[[]]], {"a": {"b": {"c": None}}}, "../../x", "\u202e", "y" * 10_000,
]

NAME_POOL = ["a", "b", "web1", "db", "frontend", "net", "x"]
_SCHEMA = json_schema()


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = _SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def _string(schema: dict[str, Any], key: str) -> st.SearchStrategy[Any]:
    fmt = schema.get("format")
    if fmt == "ipv4":
        return st.ip_addresses(v=4).map(str) | st.sampled_from(["10.89.0.10", "10.0.0.1"])
    if fmt == "ipv6":
        return st.ip_addresses(v=6).map(str) | st.sampled_from(["fd00:89::10", "::1"])
    if fmt in ("ipv4network", "ipv6network"):
        version = 4 if fmt == "ipv4network" else 6
        return st.builds(
            lambda a, p: f"{a}/{p}", st.ip_addresses(v=version),
            st.integers(0, 32 if version == 4 else 128),
        ) | st.sampled_from(["10.89.0.0/24", "fd00:89::/64", "10.89.0.128/25"])
    if "pattern" in schema and key == "name":
        return st.sampled_from(NAME_POOL) | st.from_regex(schema["pattern"], fullmatch=True)
    if key in ("network", "sandbox"):
        return st.sampled_from(NAME_POOL)
    if key == "subnet":
        return st.sampled_from(["10.89.0.0/24", "10.90.0.0/24", "fd00:89::/64", "10.89.0.0/16"])
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True) | st.sampled_from(HOSTILE_STRINGS)
    return st.sampled_from(NAME_POOL + HOSTILE_STRINGS) | st.text(max_size=20)


def from_schema(schema: dict[str, Any], key: str = "", depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that follow `schema` in shape and type (not necessarily valid as a whole)."""
    if "$ref" in schema:
        merged = {**_resolve(schema["$ref"]), **{k: v for k, v in schema.items() if k != "$ref"}}
        return from_schema(merged, key, depth)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return st.one_of([from_schema(option, key, depth) for option in schema[union]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        if not properties:
            values = schema.get("additionalProperties", {"type": "string"})
            return st.dictionaries(st.sampled_from(NAME_POOL) | st.text(max_size=8),
                                   from_schema(values, "", depth + 1), max_size=3)
        return st.fixed_dictionaries(
            {k: from_schema(v, k, depth + 1) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, k, depth + 1)
                      for k, v in properties.items() if k not in required},
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), key, depth + 1), max_size=3)
    if kind == "string":
        return _string(schema, key)
    if kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        return st.integers(low, high) | st.integers(low - 2, high + 2)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return st.none()


def schema_documents() -> st.SearchStrategy[list[dict[str, Any]]]:
    """One to five manifest documents generated from the JSON Schema."""
    return st.lists(from_schema(_SCHEMA), min_size=1, max_size=5)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _remove(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        return _replace(value, (head,), _remove(value[head], rest))
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != head}
    return [v for i, v in enumerate(value) if i != head]


@st.composite
def mutated_documents(draw: Callable[..., Any]) -> list[dict[str, Any]]:
    """Schema documents with one (or a few) wrong types, holes, extra keys or hostile strings."""
    documents: list[dict[str, Any]] = draw(schema_documents())
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(documents) - 1))
        document = documents[index]
        paths = _paths(document)
        how = draw(st.sampled_from(["wrong", "remove", "extra", "hostile"]))
        if how == "extra" or not paths:
            where = draw(st.sampled_from([()] + [p for p in paths
                                                 if isinstance(_get(document, p), dict)]))
            target = _get(document, where)
            if isinstance(target, dict):
                extra = {**target, draw(st.sampled_from(HOSTILE_STRINGS + ["spec", "nmae"])):
                         draw(st.sampled_from(WRONG_VALUES))}
                document = _replace(document, where, extra) if where else extra
        else:
            path = draw(st.sampled_from(paths))
            if how == "remove":
                document = _remove(document, path)
            elif how == "wrong":
                document = _replace(document, path, draw(st.sampled_from(WRONG_VALUES)))
            else:
                document = _replace(document, path, draw(st.sampled_from(HOSTILE_STRINGS)))
        documents[index] = document
    return documents


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


class _Dumper(yaml.CSafeDumper):
    """Never anchors and aliases for shared values: those are a trick of their own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(documents: list[Any]) -> str:
    return str(yaml.dump_all(documents, Dumper=_Dumper, allow_unicode=True,
                             sort_keys=False, width=10**9))


TRICKS = [
    lambda t: t.replace("metadata:", "metadata: {name: dup}\nmetadata:", 1),
    lambda t: t.replace("kind:", "kind: Sandbox\nkind:", 1),
    lambda t: "anchor: &a [1, 2]\n" + t.replace("spec:", "spec: *a\nx:", 1),
    lambda t: t.replace("spec:", "spec: !!python/object:os.system\n  x:", 1),
    lambda t: t.replace("name:", "name: !custom", 1),
    lambda t: "[" * 200 + t,
    lambda t: t[: len(t) // 2],
    lambda t: t.replace("\n", "\r", 3),
    lambda t: t.replace(": ", ":\t", 2),
    lambda t: "\ufeff" + t,
    lambda t: t + "\n...\n%YAML 1.1\n---\n",
    lambda t: "%TAG ! tag:evil.example,2000:\n---\n" + t,
    lambda t: t.replace("apiVersion", "? apiVersion", 1),
    lambda t: t + "\n---\n" + ("a: &x [" + ",".join(["*x"] * 3) + "]\n"),
    lambda t: t.replace("\n", "\n\x85", 1),
    lambda t: t.replace("name:", "name: >-\n   folded\n   name\n  other:", 1),
]


@st.composite
def hostile_texts(draw: Callable[..., Any]) -> str:
    """YAML text of generated documents with one or more textual tricks applied."""
    text = dump(draw(st.one_of(schema_documents(), mutated_documents())))
    for trick in draw(st.lists(st.sampled_from(TRICKS), min_size=1, max_size=3)):
        text = trick(text)
    return text


@st.composite
def spliced_bytes(draw: Callable[..., Any]) -> bytes:
    """A valid-looking manifest with random bytes written over or into it."""
    data = bytearray(dump(draw(schema_documents())).encode())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        chunk = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([
            b"\x00", b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x80\xae", b"\r",
            b"\xef\xbb\xbf", b"\x1b[2J", b"\x85", b"\xf4\x90\x80\x80",
        ]))
        if draw(st.booleans()):
            data[position:position + len(chunk)] = chunk
        else:
            data[position:position] = chunk
    return bytes(data)


# --- what every answer to hostile input must look like ------------------------------

_FORBIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_KIND_LABEL = re.compile(r"^(Network|Sandbox|Endpoint)/")


def check_refusal(code: int, stdout: str, stderr: str, files: list[str],
                  *, objects_known: bool = False) -> list[str]:
    """Assert cnm refused cleanly: exit 1, no traceback, each line `file[:line]: ...`,
    nothing that could mangle a terminal. Returns the problem lines."""
    assert code == 1, f"exit {code}\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr and "Traceback" not in stdout
    lines = stderr.splitlines()
    assert lines, "no message"
    names = sorted(files, key=len, reverse=True)
    for line in lines:
        bad = [c for c in line if unicodedata.category(c) in _FORBIDDEN]
        assert not bad, f"unsafe characters {bad!r} in {line!r}"
        assert len(line) < 2000, f"a {len(line)}-character line"
        name = next((n for n in names if line.startswith(n + ":")), None)
        assert name is not None, f"line does not start with a file name: {line!r}"
        rest = line[len(name) + 1:]
        match = re.match(r"^(\d+): ", rest)
        if objects_known:
            assert match, f"no line number: {line!r}"
            assert _KIND_LABEL.match(rest[match.end():]), f"no object named: {line!r}"
        if match:
            total = max(1, _lines_of(name))
            assert 1 <= int(match.group(1)) <= total + 1, f"line out of range: {line!r}"
    return lines


def _lines_of(name: str) -> int:
    """Lines as YAML counts them (CR, LF, CRLF, NEL, LS and PS all end a line)."""
    try:
        with open(name, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return 10**9
    return len(re.split("\r\n|\r|\n|\x85|\u2028|\u2029", text))


def all_named(documents: list[Any]) -> bool:
    """True when every document still says a known kind and a string name."""
    return all(
        isinstance(d, dict) and d.get("kind") in ("Network", "Sandbox", "Endpoint")
        and isinstance(d.get("metadata"), dict) and isinstance(d["metadata"].get("name"), str)
        for d in documents
    )


def as_json(documents: list[Any]) -> str:
    """The same documents as JSON text (valid YAML too), for a second parser path."""
    return "\n---\n".join(json.dumps(d) for d in documents)


def run_cli(*args: str) -> tuple[int, str, str]:
    """`cnm` in this process: (exit code, stdout, stderr). Any exception escapes (a bug)."""
    import contextlib
    import io

    from reconciler import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()

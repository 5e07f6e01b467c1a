"""Reading manifest files into `Manifests`, with every problem located at its line.

This is the only module that touches YAML. It composes documents with a
`SafeLoader` subclass so that each node keeps its line, turns the nodes into
plain data itself (which is where duplicate keys, odd keys and unsupported
tags are caught), validates each document against `reconciler.model`, and
runs the cross-object rules last.

Every problem of every file is collected and raised as one `ManifestError`;
no input, however broken or hostile, ends in a traceback. Cross-object rules
run only once every document is valid on its own, because an object that did
not load would otherwise show up as a misleading "unknown network" elsewhere.

Limits that keep hostile input cheap: files over 10 MiB, more than 100 000
YAML nodes per file or nesting deeper than 64 levels are refused, and YAML
aliases (`*name`) are refused outright, which rules out "billion laughs".
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml._yaml import CParser  # libyaml, shipped in PyYAML's wheels

from reconciler.errors import ManifestError, ManifestProblem
from reconciler.model import (
    API_VERSION,
    MODELS,
    Manifest,
    Manifests,
    ManifestSource,
    show,
)
from reconciler.state import ResourceKey
from reconciler.validation import validate

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64
YAML_SUFFIXES = (".yaml", ".yml")
STDIN_NAME = "<stdin>"

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_KINDS = ", ".join(MODELS)

# YAML 1.1 reads `12:34:56` as a base-60 integer, which silently mangles MAC
# addresses and port pairs; these are the SafeLoader patterns without it.
_INT_RE = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_REPLACED_RESOLVERS = {_TAG + "int": _INT_RE, _TAG + "float": _FLOAT_RE}


class _Base(
    yaml.composer.Composer,
    CParser,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """Events from libyaml's C parser (7x faster on large trees), nodes composed in Python,
    where the limits of `_Loader` live."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


class _Loader(_Base):
    """SafeLoader without base-60 numbers, aliases, or unbounded size and depth."""

    yaml_implicit_resolvers = {
        first: [(tag, _REPLACED_RESOLVERS.get(tag, regexp)) for tag, regexp in resolvers]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event is not None and event.start_mark else 0
        if isinstance(event, yaml.AliasEvent):
            raise _LimitError("YAML aliases (*name) are not supported; repeat the value", line)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _LimitError(f"more than {MAX_NODES} YAML nodes; split the file", line)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitError(f"YAML nested deeper than {MAX_DEPTH} levels", line)
            return yaml.composer.Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1


class _LimitError(yaml.YAMLError):
    """Input refused before it could cost memory or time; carries the line where it happened."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class _Document:
    """One non-empty document as plain data, with the line of every path it contains."""

    file: str
    index: int
    line: int
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    issues: list[tuple[str, int, str]] = field(default_factory=list)  # (path, line, message)

    @property
    def source(self) -> ManifestSource:
        return ManifestSource(self.file, self.index, self.line)

    def line_of(self, path: str) -> int:
        """Line of `path`, else of its nearest written parent, else of the document."""
        parts = path.split(".")
        while parts:
            line = self.lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return self.line

    def label(self) -> str | None:
        """`Kind/name` once the document says both, as the user wrote them."""
        kind = self.data.get("kind")
        metadata = self.data.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(kind, str) and kind in MODELS and isinstance(name, str):
            return f"{kind}/{name if _is_plain(name) else show(name)}"
        return None


# --- public API ---


def load(paths: Sequence[str], *, stdin: TextIO | None = None) -> Manifests:
    """Load every manifest under `paths` (files, directories, `-` for stdin).

    Raises ManifestError listing every problem found; returns only valid manifests.
    """
    problems: list[ManifestProblem] = []
    documents: list[_Document] = []
    for name, text in _read_all(paths, stdin, problems):
        documents += _parse(text, name, problems)
    return _finish(documents, problems)


def load_text(text: str, name: str = "<text>") -> Manifests:
    """Load manifests from a string, reported under the file name `name`."""
    problems: list[ManifestProblem] = []
    documents: list[_Document] = []
    if len(text) > MAX_FILE_BYTES:
        problems.append(_file_problem(name, _too_big()))
    else:
        documents = _parse(text.removeprefix("\ufeff"), name, problems)
    return _finish(documents, problems)


@dataclass(frozen=True)
class _LoadedFile:
    """One file's model objects (or its problems), reusable while the file is unchanged."""

    stamp: tuple[int, ...]
    objects: tuple[tuple[Manifest, ManifestSource], ...]
    field_lines: dict[tuple[ResourceKey, str], int]
    problems: tuple[ManifestProblem, ...]


def _stamp(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


class LoadCache:
    """`load()` for a long-running process: only files that changed are parsed again.

    A file is reparsed when its stat stamp (mtime, ctime, size, inode) changes or
    when `forget()` names it (a file watcher's report, for changes within one
    timestamp tick). Cross-object validation always runs on the whole set, and
    the result is exactly what `load()` gives for the same paths (stdin aside).
    When nothing changed, the previous `Manifests` object itself is returned.
    """

    def __init__(self) -> None:
        self._files: dict[str, _LoadedFile] = {}
        self._last: tuple[tuple[tuple[str, tuple[int, ...]], ...], Manifests] | None = None
        self._stale: set[str] = set()
        #: Files parsed again or gone in the last `load()` (for "what changed" reports).
        self.changed: list[str] = []

    def forget(self, path: str | None = None) -> None:
        """Reparse `path` next time (every file when None)."""
        if path is None:
            self._stale.update(self._files)
        else:
            self._stale.add(path)
        self._last = None

    def load(self, paths: Sequence[str]) -> Manifests:
        problems: list[ManifestProblem] = []
        loaded: list[_LoadedFile] = []
        stamps: list[tuple[str, tuple[int, ...]]] = []
        seen: set[str] = set()
        self.changed = []
        stale, self._stale = self._stale, set()
        for path in paths:
            for file in _expand(path, problems):
                stamp = _stamp(file)
                cached = self._files.get(file)
                if stamp is None or cached is None or cached.stamp != stamp or file in stale:
                    cached = self._parse_file(file, stamp)
                    self.changed.append(file)
                    if stamp is not None:
                        self._files[file] = cached
                seen.add(file)
                stamps.append((file, cached.stamp))
                loaded.append(cached)
        for gone in sorted(set(self._files) - seen):
            del self._files[gone]
            self.changed.append(gone)
        key = tuple(stamps)
        if not problems and self._last is not None and self._last[0] == key:
            return self._last[1]
        objects: list[tuple[Manifest, ManifestSource]] = []
        field_lines: dict[tuple[ResourceKey, str], int] = {}
        for entry in loaded:
            problems += entry.problems
            objects += entry.objects
            for where, line in entry.field_lines.items():
                field_lines.setdefault(where, line)
        manifests = _validated(objects, field_lines, problems)
        self._last = (key, manifests)
        return manifests

    @staticmethod
    def _parse_file(file: str, stamp: tuple[int, ...] | None) -> _LoadedFile:
        problems: list[ManifestProblem] = []
        text = _read_file(file, problems)
        documents = _parse(text, _printable(file), problems) if text is not None else []
        objects, field_lines = _objects(documents, problems)
        return _LoadedFile(stamp or (), tuple(objects), field_lines, tuple(problems))


def _objects(
    documents: list[_Document], problems: list[ManifestProblem]
) -> tuple[list[tuple[Manifest, ManifestSource]], dict[tuple[ResourceKey, str], int]]:
    """The model objects of `documents` (problems appended), with the line of each field."""
    objects: list[tuple[Manifest, ManifestSource]] = []
    field_lines: dict[tuple[ResourceKey, str], int] = {}
    for document in documents:
        obj = _to_object(document, problems)
        if obj is None:
            continue
        objects.append((obj, document.source))
        for path, line in document.lines.items():
            field_lines.setdefault((obj.key, path), line)
    return objects, field_lines


def _validated(
    objects: list[tuple[Manifest, ManifestSource]],
    field_lines: dict[tuple[ResourceKey, str], int],
    problems: list[ManifestProblem],
) -> Manifests:
    """The manifests of `objects`, unless they or the problems so far say otherwise."""
    if problems:
        raise ManifestError(problems)
    manifests = Manifests.build(objects)
    problems = validate(manifests, field_lines=field_lines)
    if problems:
        raise ManifestError(problems)
    return manifests


def _finish(documents: list[_Document], problems: list[ManifestProblem]) -> Manifests:
    return _validated(*_objects(documents, problems), problems)


# --- reading files ---


def _file_problem(file: str, message: str, line: int | None = None) -> ManifestProblem:
    return ManifestProblem(_printable(file), line, None, None, message)


def _printable(text: str) -> str:
    """File names come from the file system: escape anything that would break the line."""
    return text if text.isprintable() else text.encode("unicode_escape", "replace").decode("ascii")


def _too_big() -> str:
    return f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it into smaller files"


def _read_all(
    paths: Sequence[str], stdin: TextIO | None, problems: list[ManifestProblem]
) -> Iterator[tuple[str, str]]:
    """(file name, text) of every manifest file, in the order given, directories sorted."""
    for path in paths:
        if path == "-":
            text = _read_stdin(stdin if stdin is not None else sys.stdin, problems)
            if text is not None:
                yield STDIN_NAME, text
            continue
        for file in _expand(path, problems):
            text = _read_file(file, problems)
            if text is not None:
                yield _printable(file), text


def _expand(path: str, problems: list[ManifestProblem]) -> list[str]:
    """A file as is; a directory's `*.yaml` / `*.yml` files, recursively, hidden ones skipped."""
    if not os.path.isdir(path):
        return [path]
    found: list[str] = []

    def on_error(error: OSError) -> None:
        problems.append(_file_problem(error.filename or path, f"cannot read: {error.strerror}"))

    for root, dirs, files in os.walk(path, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [
            os.path.join(root, f)
            for f in files
            if f.endswith(YAML_SUFFIXES) and not f.startswith(".")
        ]
    return [f for f in sorted(found) if _is_regular(f, problems)]


_SPECIAL = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
            stat.S_IFBLK: "a device", stat.S_IFDIR: "a directory"}


def _is_regular(path: str, problems: list[ManifestProblem]) -> bool:
    """Only regular files are read from a directory: a FIFO there would block forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        problems.append(_file_problem(path, f"cannot read: {error.strerror or error}"))
        return False
    if stat.S_ISREG(mode):
        return True
    what = _SPECIAL.get(stat.S_IFMT(mode), "not a regular file")
    problems.append(_file_problem(
        path, f"is not a regular file ({what}); a manifest directory may hold only files"
    ))
    return False


def _read_file(path: str, problems: list[ManifestProblem]) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        problems.append(_file_problem(path, "no such file or directory"))
        return None
    except OSError as error:
        problems.append(_file_problem(path, f"cannot read: {error.strerror or error}"))
        return None
    return _decode(path, data, problems)


def _read_stdin(stream: TextIO, problems: list[ManifestProblem]) -> str | None:
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            return _decode(STDIN_NAME, buffer.read(MAX_FILE_BYTES + 1), problems)
        text = stream.read(MAX_FILE_BYTES + 1)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        problems.append(_file_problem(STDIN_NAME, f"cannot read standard input: {error}"))
        return None
    if len(text) > MAX_FILE_BYTES:
        problems.append(_file_problem(STDIN_NAME, _too_big()))
        return None
    return text.removeprefix("\ufeff")


def _decode(name: str, data: bytes, problems: list[ManifestProblem]) -> str | None:
    """UTF-8 text or one clear problem: binary files are not parsed at all."""
    if len(data) > MAX_FILE_BYTES:
        problems.append(_file_problem(name, _too_big()))
        return None
    if b"\0" in data:
        problems.append(_file_problem(name, "is a binary file, not YAML text"))
        return None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        problems.append(
            _file_problem(
                name,
                f"is not UTF-8 text (invalid byte at offset {error.start}); save it as UTF-8",
            )
        )
        return None


# --- YAML to plain data ---


def _parse(text: str, name: str, problems: list[ManifestProblem]) -> list[_Document]:
    """The non-empty documents of one file; syntax errors end the file's parsing."""
    documents: list[_Document] = []
    loader: _Loader | None = None
    index = 0
    try:
        loader = _Loader(text)
        while loader.check_node():
            index += 1
            document = _document(loader.get_node(), name, index, problems)
            if document is not None:
                documents.append(document)
    except _LimitError as error:
        problems.append(_file_problem(name, error.message, error.line))
    except yaml.MarkedYAMLError as error:
        problems.append(_yaml_problem(name, error))
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        message = f"character #x{error.character:04x} is not allowed in YAML; remove it"
        problems.append(_file_problem(name, message, line))
    except yaml.YAMLError as error:
        problems.append(_file_problem(name, f"YAML error: {_one_line(str(error))}"))
    except RecursionError:
        problems.append(_file_problem(name, f"YAML nested too deeply (limit {MAX_DEPTH})"))
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _yaml_problem(name: str, error: yaml.MarkedYAMLError) -> ManifestProblem:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else None
    what = _one_line(error.problem or "invalid YAML")
    if error.context:
        what += f" ({_one_line(error.context)})"
    return _file_problem(name, f"YAML syntax error: {what}", line)


def _document(
    root: yaml.Node | None, name: str, index: int, problems: list[ManifestProblem]
) -> _Document | None:
    if root is None or (root.tag == _TAG + "null" and isinstance(root, yaml.ScalarNode)):
        return None  # empty document: `---` alone or comments only
    line = root.start_mark.line + 1
    if not isinstance(root, yaml.MappingNode):
        what = "list" if isinstance(root, yaml.SequenceNode) else f"scalar {show(root.value)}"
        problems.append(
            _file_problem(
                name,
                f"document {index} is a {what}, not a mapping with apiVersion, kind, "
                "metadata and spec",
                line,
            )
        )
        return None
    document = _Document(name, index, line, {})
    data = _to_data(root, "", document)
    document.data = data if isinstance(data, dict) else {}
    return document


def _to_data(node: yaml.Node, path: str, document: _Document) -> Any:
    """Plain data for `node`, recording the line of every path below it."""
    if isinstance(node, yaml.MappingNode):
        return _mapping(node, path, document)
    if isinstance(node, yaml.SequenceNode):
        _check_tag(node, _TAG + "seq", path, document)
        items = []
        for number, item in enumerate(node.value):
            child = _join(path, number)
            document.lines.setdefault(child, item.start_mark.line + 1)
            items.append(_to_data(item, child, document))
        return items
    return _scalar(node, path, document)


def _mapping(node: yaml.MappingNode, path: str, document: _Document) -> dict[str, Any]:
    _check_tag(node, _TAG + "map", path, document)
    result: dict[str, Any] = {}
    first_lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = _key(key_node, path, document)
        if key is None:
            continue
        child = _join(path, key)
        if key in result:
            document.issues.append(
                (
                    child,
                    line,
                    f"duplicate key {show(key)} (first at line {first_lines[key]}); keep only one",
                )
            )
            continue
        first_lines[key] = line
        document.lines.setdefault(child, line)
        result[key] = _to_data(value_node, child, document)
    return result


def _key(node: yaml.Node, path: str, document: _Document) -> str | None:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        document.issues.append((path, line, "mapping keys must be plain strings"))
        return None
    key = _scalar(node, path, document)
    if not isinstance(key, str):
        document.issues.append(
            (path, line, f"mapping key {show(node.value)} must be a string; quote it")
        )
        return None
    return key


def _scalar(node: yaml.Node, path: str, document: _Document) -> Any:
    if node.tag not in _SCALAR_TAGS:
        document.issues.append(
            (path, node.start_mark.line + 1, f"unsupported YAML tag {show(node.tag)}; remove it")
        )
        return None
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except Exception:  # e.g. a 5000-digit int or an impossible date: keep the text as written
        return node.value


def _check_tag(node: yaml.Node, expected: str, path: str, document: _Document) -> None:
    if node.tag != expected:
        document.issues.append(
            (path, node.start_mark.line + 1, f"unsupported YAML tag {show(node.tag)}; remove it")
        )


def _join(path: str, segment: str | int) -> str:
    return f"{path}.{segment}" if path else str(segment)


def _is_plain(text: str) -> bool:
    return text.isprintable() and text.isascii() and " " not in text and 0 < len(text) <= 80


# --- plain data to model objects ---


def _to_object(document: _Document, problems: list[ManifestProblem]) -> Manifest | None:
    """The model object of one document, or None after recording why not."""
    label = document.label()

    def report(path: str, message: str, line: int | None = None) -> None:
        where = document.line_of(path) if line is None else line
        problems.append(ManifestProblem(document.file, where, label, path or None, message))

    for path, line, message in document.issues:
        report(path, message, line)
    reported = {path for path, _, _ in document.issues}
    data = document.data
    if "apiVersion" not in data:
        report("apiVersion", f"required field is missing; use apiVersion: {API_VERSION}")
    kind = data.get("kind")
    if kind is None:
        report("kind", f"required field is missing; use one of {_KINDS}")
        return None
    if not isinstance(kind, str) or kind not in MODELS:
        report("kind", f"unknown kind {show(kind)}; use one of {_KINDS}{_did_you_mean(kind)}")
        return None
    model = MODELS[kind]
    try:
        obj = model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            path = _error_path(detail["loc"], data)
            if not _under(path, reported):  # already explained by a YAML-level issue
                report(path, _error_message(detail, model, path))
        return None
    return None if document.issues or "apiVersion" not in data else obj


def _under(path: str, prefixes: set[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def _did_you_mean(value: object, choices: Sequence[str] = tuple(MODELS)) -> str:
    if not isinstance(value, str):
        return ""
    folded = {c.lower().replace("_", ""): c for c in choices}
    exact = folded.get(value.lower().replace("_", ""))
    close = [exact] if exact else difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _error_path(loc: tuple[str | int, ...], data: Any) -> str:
    """Dotted path of a pydantic error, as written in the file, without union-member tags."""
    segments: list[str] = []
    current: Any = data
    for position, segment in enumerate(loc):
        found, child = _child(current, segment)
        if found:
            current = child
        elif isinstance(current, dict) and position == len(loc) - 1:
            current = None  # a missing key: still part of the path
        else:
            break  # a union member's tag or a validator's name: not a place in the file
        segments.append(_segment(segment))
    return ".".join(segments)


def _child(current: Any, segment: str | int) -> tuple[bool, Any]:
    if isinstance(current, dict) and segment in current:
        return True, current[segment]
    if isinstance(current, list) and isinstance(segment, int) and 0 <= segment < len(current):
        return True, current[segment]
    return False, None


def _segment(segment: str | int) -> str:
    text = str(segment)
    return text if _is_plain(text) else show(text)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _error_message(detail: ErrorDetails, model: type[BaseModel], path: str) -> str:
    """One line saying what is wrong with a value and what would be right."""
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    if kind == "value_error":
        return str(ctx.get("error", detail["msg"]))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field_message(model, path)
    if kind == "literal_error":
        if path == "apiVersion":
            return f"{show(value)} is not supported; use {API_VERSION}"
        return f"{show(value)} is not allowed; use one of {ctx.get('expected')}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{show(value)} is too small; the minimum is {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"{show(value)} is too large; the maximum is {ctx.get('le', ctx.get('lt'))}"
    if kind in _EXPECTED:
        hint = "; quote it" if kind == "string_type" and _is_yaml_scalar(value) else ""
        return f"expected {_EXPECTED[kind]}, got {show(value)}{hint}"
    return f"{_one_line(detail['msg'])} (got {show(value)})"


def _is_yaml_scalar(value: object) -> bool:
    return value is not None and not isinstance(value, dict | list | str)


def _unknown_field_message(model: type[BaseModel], path: str) -> str:
    parts = path.split(".")
    allowed = _fields_at(model, parts[:-1])
    if not allowed:
        return "unknown field; remove it"
    return (
        f"unknown field {show(parts[-1])}; allowed here: {', '.join(allowed)}"
        f"{_did_you_mean(parts[-1], allowed)}"
    )


def _fields_at(model: type[BaseModel], path: Sequence[str]) -> list[str]:
    """Names (as users write them) of the fields of the model found at `path`."""
    current: Any = model
    for segment in path:
        current = _unwrap(current)
        if _is_model(current):
            by_alias = {
                info.validation_alias or name: info for name, info in current.model_fields.items()
            }
            info = by_alias.get(segment)
            if info is None:
                return []
            current = info.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if not _is_model(current):
        return []
    return [str(info.validation_alias or name) for name, info in current.model_fields.items()]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` to X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def dump_yaml(data: object) -> str:
    """YAML text for `cnm get -o yaml` and `cnm export` (this module owns the yaml library)."""
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))

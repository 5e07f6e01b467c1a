"""YAML text to plain data, with the line of every field, refusing what would cost too much.

This is the only module that imports yaml. Documents are composed with a
`SafeLoader`-like loader (libyaml's C parser, Python composer) so that each
node keeps its line, and the nodes are turned into plain data here, which is
where duplicate keys, non-string keys and unsupported tags are caught: they
become the document's `issues`, worded for the user, instead of exceptions.

Limits that keep hostile input cheap: more than 100 000 YAML nodes per file or
nesting deeper than 64 levels are refused, and YAML aliases (`*name`) are
refused outright, which rules out "billion laughs". (Files over 10 MiB never
get here: `manifest_files` refuses them.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import yaml
from yaml._yaml import CParser  # libyaml, shipped in PyYAML's wheels

from reconciler.errors import ManifestProblem, show
from reconciler.manifest_files import file_problem, read_all

MAX_NODES = 100_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))

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
class Document:
    """One non-empty document as plain data, with the line of every path it contains."""

    file: str
    index: int
    line: int
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    issues: list[tuple[str, int, str]] = field(default_factory=list)  # (path, line, message)

    def line_of(self, path: str) -> int:
        """Line of `path`, else of its nearest written parent, else of the document."""
        parts = path.split(".")
        while parts:
            line = self.lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return self.line


def read_documents(paths: Sequence[str], stdin: TextIO | None,
                   problems: list[ManifestProblem]) -> list[Document]:
    """The documents of every manifest file under `paths` (`-`: `stdin`), in order."""
    documents: list[Document] = []
    for name, text in read_all(paths, stdin, problems):
        documents += parse(text, name, problems)
    return documents


def parse(text: str, name: str, problems: list[ManifestProblem]) -> list[Document]:
    """The non-empty documents of one file; syntax errors end the file's parsing."""
    documents: list[Document] = []
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
        problems.append(file_problem(name, error.message, error.line))
    except yaml.MarkedYAMLError as error:
        problems.append(_yaml_problem(name, error))
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        message = f"character #x{error.character:04x} is not allowed in YAML; remove it"
        problems.append(file_problem(name, message, line))
    except yaml.YAMLError as error:
        problems.append(file_problem(name, f"YAML error: {_one_line(str(error))}"))
    except RecursionError:
        problems.append(file_problem(name, f"YAML nested too deeply (limit {MAX_DEPTH})"))
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
    return file_problem(name, f"YAML syntax error: {what}", line)


def _document(
    root: yaml.Node | None, name: str, index: int, problems: list[ManifestProblem]
) -> Document | None:
    if root is None or (root.tag == _TAG + "null" and isinstance(root, yaml.ScalarNode)):
        return None  # empty document: `---` alone or comments only
    line = root.start_mark.line + 1
    if not isinstance(root, yaml.MappingNode):
        what = "list" if isinstance(root, yaml.SequenceNode) else f"scalar {show(root.value)}"
        problems.append(
            file_problem(
                name,
                f"document {index} is a {what}, not a mapping with apiVersion, kind, "
                "metadata and spec",
                line,
            )
        )
        return None
    document = Document(name, index, line, {})
    data = _to_data(root, "", document)
    document.data = data if isinstance(data, dict) else {}
    return document


def _to_data(node: yaml.Node, path: str, document: Document) -> Any:
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


def _mapping(node: yaml.MappingNode, path: str, document: Document) -> dict[str, Any]:
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


def _key(node: yaml.Node, path: str, document: Document) -> str | None:
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


def _scalar(node: yaml.Node, path: str, document: Document) -> Any:
    if node.tag not in _SCALAR_TAGS:
        document.issues.append(
            (path, node.start_mark.line + 1, f"unsupported YAML tag {show(node.tag)}; remove it")
        )
        return None
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except Exception:  # e.g. a 5000-digit int or an impossible date: keep the text as written
        return node.value


def _check_tag(node: yaml.Node, expected: str, path: str, document: Document) -> None:
    if node.tag != expected:
        document.issues.append(
            (path, node.start_mark.line + 1, f"unsupported YAML tag {show(node.tag)}; remove it")
        )


def _join(path: str, segment: str | int) -> str:
    return f"{path}.{segment}" if path else str(segment)


def dump_yaml(data: object) -> str:
    """YAML text for `cnm get -o yaml` and `cnm export` (this module owns the yaml library)."""
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))

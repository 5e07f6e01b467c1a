"""Plain YAML documents to model objects, and the objects of every file to valid `Manifests`.

Each document is validated against its kind's model on its own; its problems
are located at the line of the offending field. Cross-object rules run on
the objects that did load, in the same run, so that every problem is reported
at once; a reference to an object whose document did not load (or to anything,
when a file did not parse at all) is not reported as unknown, because that
would only echo the problem already reported there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError

from reconciler.error_wording import did_you_mean, error_message, error_path, is_plain
from reconciler.errors import ManifestError, ManifestProblem, show
from reconciler.manifest_set import Manifests, ManifestSource
from reconciler.model import (
    API_VERSION,
    MODELS,
    Endpoint,
    Manifest,
    Network,
)
from reconciler.resource_key import ResourceKey
from reconciler.validation import validate
from reconciler.yaml_documents import Document

if TYPE_CHECKING:
    from reconciler.caching import BuildMemo

#: (object, where it was written) pairs, and the line of each (object key, field path).
Objects = list[tuple[Manifest, ManifestSource]]
FieldLines = dict[tuple[ResourceKey, str], int]

_KINDS = ", ".join(MODELS)


def objects_of(documents: list[Document], problems: list[ManifestProblem]) -> tuple[
    Objects, FieldLines
]:
    """The model objects of `documents` (problems appended), with the line of each field."""
    objects: Objects = []
    field_lines: FieldLines = {}
    for document in documents:
        obj = to_object(document, problems)
        if obj is None:
            continue
        objects.append((obj, ManifestSource(document.file, document.index, document.line)))
        for path, line in document.lines.items():
            field_lines.setdefault((obj.key, path), line)
    return objects, field_lines


def validated(objects: Objects, field_lines: Mapping[tuple[ResourceKey, str], int],
              problems: list[ManifestProblem],
              memo: BuildMemo[ResourceKey, bool] | None = None, *,
              elsewhere: Mapping[str, Network] | None = None,
              external_networks: bool = False) -> Manifests:
    """The manifests of `objects`, unless they or the problems so far say otherwise.

    `problems` so far are those of documents that did not load (or of files): the
    rules across objects still run on the rest, and all problems go out together.
    `memo`: see `validation.validate` (a `LoadCache` passes its own). `elsewhere`
    and `external_networks`: see `loader.load`.
    """
    if elsewhere:
        defined = {o.metadata.name for o, _ in objects if isinstance(o, Network)}
        named = {o.spec.network for o, _ in objects if isinstance(o, Endpoint)}
        objects = [*objects, *((elsewhere[n], ManifestSource("<kernel>", 0, None))
                               for n in sorted(named - defined) if n in elsewhere)]
    manifests = Manifests.build(objects)
    unloaded = _unloaded(problems)
    problems = [*problems, *validate(manifests, field_lines=field_lines, unloaded=unloaded,
                                     memo=memo, external_networks=external_networks)]
    if problems:
        raise ManifestError(problems)
    return manifests


def _unloaded(problems: list[ManifestProblem]) -> frozenset[ResourceKey] | None:
    """Keys of the objects whose documents did not load; None when some document did
    not get as far as a kind and a name (then any reference may be to it)."""
    keys = set()
    for problem in problems:
        if problem.obj is None:
            return None
        kind, _, name = problem.obj.partition("/")
        keys.add(ResourceKey(kind, name))
    return frozenset(keys)


def label_of(document: Document) -> str | None:
    """`Kind/name` once the document says both, as the user wrote them."""
    kind = document.data.get("kind")
    metadata = document.data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if isinstance(kind, str) and kind in MODELS and isinstance(name, str):
        return f"{kind}/{name if is_plain(name) else show(name)}"
    return None


def to_object(document: Document, problems: list[ManifestProblem]) -> Manifest | None:
    """The model object of one document, or None after recording why not."""
    label = label_of(document)

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
        report("kind", f"unknown kind {show(kind)}; use one of {_KINDS}"
               f"{did_you_mean(kind, tuple(MODELS))}")
        return None
    model = MODELS[kind]
    try:
        obj = model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            path = error_path(detail["loc"], data)
            if not _under(path, reported):  # already explained by a YAML-level issue
                report(path, error_message(detail, model, path))
        return None
    return None if document.issues or "apiVersion" not in data else obj


def _under(path: str, prefixes: set[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)

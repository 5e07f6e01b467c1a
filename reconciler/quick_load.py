"""`cnm validate`'s load: the plain model first, pydantic only to word a problem.

`load` answers as `loader.load(paths, external_networks=True)` does, with the
same `Manifests` or the same `ManifestError`. When every document reads into
the plain model (reconciler/plain_model.py) and the rules across objects
(reconciler/validation) find nothing on those objects, the manifests are valid
and pydantic is never imported. Anything else goes, with the documents already
read (stdin cannot be read twice), through the pydantic model, whose wording
of every problem is the one users see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO, cast

from reconciler.errors import ManifestProblem
from reconciler.manifest_set import Manifests, ManifestSource
from reconciler.plain_model import Unsure, plain_object
from reconciler.validation import validate
from reconciler.yaml_documents import Document, read_documents

if TYPE_CHECKING:
    from reconciler.model import Manifest


def load(paths: Sequence[str], *, stdin: TextIO | None = None) -> Manifests:
    """The manifests under `paths`, a network no manifest defines accepted (as
    `cnm validate` takes them); raises ManifestError listing every problem."""
    problems: list[ManifestProblem] = []
    documents = read_documents(paths, stdin, problems)
    if not problems:
        manifests = _plain_manifests(documents)
        if manifests is not None:
            return manifests
    from reconciler.document_objects import objects_of, validated

    return validated(*objects_of(documents, problems), problems, external_networks=True)


def _plain_manifests(documents: list[Document]) -> Manifests | None:
    """The valid manifests of `documents` in the plain model; None when the pydantic
    model must decide (or a rule found a problem, which it words with field lines)."""
    objects = []
    for document in documents:
        if document.issues:
            return None
        try:
            obj = plain_object(document.data)
        except Unsure:
            return None
        objects.append((obj, ManifestSource(document.file, document.index, document.line)))
    # The plain objects have every field and property the rules read (plain_model.py).
    manifests = Manifests.build(cast("list[tuple[Manifest, ManifestSource]]", objects))
    if validate(manifests, external_networks=True):
        return None
    return manifests

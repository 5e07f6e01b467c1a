"""Reading manifest files into `Manifests`, with every problem located at its line.

The public entry of loading; each step lives in its own module:

* `manifest_files`: which files, read as text safely (size, type, encoding);
* `yaml_documents`: YAML text to plain data with the line of every field, the
  safety limits (the only module that imports yaml);
* `document_objects`: plain data to model objects (pydantic's errors worded by
  `error_wording`), then the cross-object rules of `reconciler.validation`;
* `load_cache`: `LoadCache`, the same for `cnm watch`, reparsing only changed files.

Every problem of every file is collected and raised as one `ManifestError`;
no input, however broken or hostile, ends in a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TextIO

from reconciler.document_objects import objects_of, validated
from reconciler.errors import ManifestProblem
from reconciler.load_cache import LoadCache
from reconciler.manifest_files import (
    MAX_FILE_BYTES,
    STDIN_NAME,
    YAML_SUFFIXES,
    file_problem,
    too_big,
)
from reconciler.manifest_set import Manifests
from reconciler.model import Network
from reconciler.yaml_documents import (
    MAX_DEPTH,
    MAX_NODES,
    Document,
    dump_yaml,
    parse,
    read_documents,
)

__all__ = [
    "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "STDIN_NAME", "YAML_SUFFIXES", "LoadCache",
    "dump_yaml", "load", "load_text",
]


def load(
    paths: Sequence[str], *, stdin: TextIO | None = None,
    elsewhere: Mapping[str, Network] | None = None, external_networks: bool = False,
) -> Manifests:
    """Load every manifest under `paths` (files, directories, `-` for stdin).

    Raises ManifestError listing every problem found; returns only valid manifests.
    `elsewhere`: networks other apply sets own (shared_networks.py), added when an
    endpoint names one the manifests do not define; `external_networks`: such a
    reference is not a problem (`cnm validate`, which cannot read the kernel).
    """
    problems: list[ManifestProblem] = []
    documents = read_documents(paths, stdin, problems)
    return validated(*objects_of(documents, problems), problems, elsewhere=elsewhere,
                     external_networks=external_networks)


def load_text(text: str, name: str = "<text>",
              elsewhere: Mapping[str, Network] | None = None) -> Manifests:
    """Load manifests from a string, reported under the file name `name` (`elsewhere`:
    as in `load`)."""
    problems: list[ManifestProblem] = []
    documents: list[Document] = []
    if len(text) > MAX_FILE_BYTES:
        problems.append(file_problem(name, too_big()))
    else:
        documents = parse(text.removeprefix("\ufeff"), name, problems)
    return validated(*objects_of(documents, problems), problems, elsewhere=elsewhere)

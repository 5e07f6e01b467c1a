"""Finding manifest files and reading them as text, refusing what would hang or flood.

A directory is read recursively (hidden entries skipped, names sorted); only
regular files are read from it, because a FIFO would block forever. Files over
10 MiB, binary files and text that is not UTF-8 are each refused with one
problem, so that nothing here ends in a traceback.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from reconciler.errors import ManifestProblem

MAX_FILE_BYTES = 10 * 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")
STDIN_NAME = "<stdin>"


def file_problem(file: str, message: str, line: int | None = None) -> ManifestProblem:
    """A problem of a whole file (or of a line in it, before any object is known)."""
    return ManifestProblem(printable(file), line, None, None, message)


def printable(text: str) -> str:
    """File names come from the file system: escape anything that would break the line."""
    return text if text.isprintable() else text.encode("unicode_escape", "replace").decode("ascii")


def too_big() -> str:
    return f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it into smaller files"


def read_all(
    paths: Sequence[str], stdin: TextIO | None, problems: list[ManifestProblem]
) -> Iterator[tuple[str, str]]:
    """(file name, text) of every manifest file, in the order given, directories sorted."""
    for path in paths:
        if path == "-":
            text = read_stdin(stdin if stdin is not None else sys.stdin, problems)
            if text is not None:
                yield STDIN_NAME, text
            continue
        for file in expand(path, problems):
            text = read_file(file, problems)
            if text is not None:
                yield printable(file), text


def expand(path: str, problems: list[ManifestProblem]) -> list[str]:
    """A file as is; a directory's `*.yaml` / `*.yml` files, recursively, hidden ones skipped."""
    return [file for file, _ in expand_stat(path, problems)]


def expand_stat(path: str, problems: list[ManifestProblem]
                ) -> list[tuple[str, os.stat_result | None]]:
    """`expand`, each file with the `os.stat` that found it regular (None for a `path`
    that is not a directory: taken as is, not looked at), so that a caller comparing
    stat stamps (`LoadCache`) need not stat each file again."""
    if not os.path.isdir(path):
        return [(path, None)]
    found: list[str] = []

    def on_error(error: OSError) -> None:
        problems.append(file_problem(error.filename or path, f"cannot read: {error.strerror}"))

    for root, dirs, files in os.walk(path, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [
            os.path.join(root, f)
            for f in files
            if f.endswith(YAML_SUFFIXES) and not f.startswith(".")
        ]
    regular = ((f, _regular_stat(f, problems)) for f in sorted(found))
    return [(f, st) for f, st in regular if st is not None]


_SPECIAL = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
            stat.S_IFBLK: "a device", stat.S_IFDIR: "a directory"}


def _regular_stat(path: str, problems: list[ManifestProblem]) -> os.stat_result | None:
    """Only regular files are read from a directory: a FIFO there would block forever.
    The file's stat when it is one; else None, after recording why not."""
    try:
        found = os.stat(path)
    except OSError as error:
        problems.append(file_problem(path, f"cannot read: {error.strerror or error}"))
        return None
    if stat.S_ISREG(found.st_mode):
        return found
    what = _SPECIAL.get(stat.S_IFMT(found.st_mode), "not a regular file")
    problems.append(file_problem(
        path, f"is not a regular file ({what}); a manifest directory may hold only files"
    ))
    return None


def read_file(path: str, problems: list[ManifestProblem]) -> str | None:
    """The text of `path`, or None after recording why it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        problems.append(file_problem(path, "no such file or directory"))
        return None
    except OSError as error:
        problems.append(file_problem(path, f"cannot read: {error.strerror or error}"))
        return None
    return _decode(path, data, problems)


def read_stdin(stream: TextIO, problems: list[ManifestProblem]) -> str | None:
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            return _decode(STDIN_NAME, buffer.read(MAX_FILE_BYTES + 1), problems)
        text = stream.read(MAX_FILE_BYTES + 1)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        problems.append(file_problem(STDIN_NAME, f"cannot read standard input: {error}"))
        return None
    if len(text) > MAX_FILE_BYTES:
        problems.append(file_problem(STDIN_NAME, too_big()))
        return None
    return text.removeprefix("\ufeff")


def _decode(name: str, data: bytes, problems: list[ManifestProblem]) -> str | None:
    """UTF-8 text or one clear problem: binary files are not parsed at all."""
    if len(data) > MAX_FILE_BYTES:
        problems.append(file_problem(name, too_big()))
        return None
    if b"\0" in data:
        problems.append(file_problem(name, "is a binary file, not YAML text"))
        return None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        problems.append(
            file_problem(
                name,
                f"is not UTF-8 text (invalid byte at offset {error.start}); save it as UTF-8",
            )
        )
        return None

"""The exception tree of cnm.

Every error says whose fault it is (the user's input, the kernel, a conflict
with something cnm does not own) and whether retrying can help, so that the
CLI can print one line and `watch` can decide to retry or to wait for a fix.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass

#: Unicode categories never printed raw: controls (escape sequences, line
#: separators), format characters (bidi overrides, zero-width), surrogates,
#: private-use and unassigned code points, line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """`text` with every character that could mangle a terminal or split a line escaped."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        c.encode("unicode_escape", "backslashreplace").decode("ascii")
        if unicodedata.category(c) in _UNSAFE_CATEGORIES else c
        for c in text
    )


def show(value: object, limit: int = 64) -> str:
    """A value as one short line for a message, in JSON spelling (strings double-quoted)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CnmError(Exception):
    """Base of every error cnm raises on purpose."""

    retryable: bool = False

    def one_line(self) -> str:
        """The message as the CLI prints it: one line, no traceback."""
        return printable(" ".join(str(self).split("\n")))


@dataclass(frozen=True)
class ManifestProblem:
    """One problem in the user's manifests, located as precisely as known."""

    file: str
    line: int | None
    obj: str | None  # "Kind/name", when the document got that far
    field: str | None  # dotted path inside the document, e.g. "spec.ipam.0.subnet"
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.obj:
            parts.append(self.obj)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return printable(": ".join(parts))


class ManifestError(CnmError):
    """The manifests are wrong: the user's fault, retrying does not help."""

    def __init__(self, problems: list[ManifestProblem]) -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.file, p.line or 0, p.obj or "", p.field or "", p.message)
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    def one_line(self) -> str:
        return str(self)  # already one line per problem


class ConflictError(CnmError):
    """The plan would touch a kernel object that cnm does not own (or another set owns)."""


class PrivilegeError(CnmError):
    """cnm lacks a capability it needs (CAP_NET_ADMIN, CAP_SYS_ADMIN)."""


class KernelError(CnmError):
    """The kernel refused a step. Temporary errors (EBUSY, EAGAIN) may be retried."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class LockError(CnmError):
    """Another cnm writer holds the apply lock."""

    retryable = True

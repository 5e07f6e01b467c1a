"""Attribute values that are not plain JSON: a `Drift` (an observed value no manifest
could ask for) and an `MtuPair` (a veth's two MTUs when they differ).

Each has one text form, the one plans print and state JSON carries, and reads it
back (`from_text`). `reconciler.state` re-exports them with the rest of the state's
value types.
"""

from __future__ import annotations

import enum


class DriftReason(enum.Enum):
    """Why an observed value is not one cnm would write."""

    NO_RULES = "no rules"  # every rule of a firewall setting is gone
    RULES_DIFFER = "rules differ"  # rules are there, but not the ones cnm writes for any value


class Drift:
    """An observed attribute value (or list element) that no desired value equals.

    `subject` names the part that drifted when the value is a list (a published
    port's text). The text form, `(no rules)` or `8080->80/tcp (rules differ)`, is
    how plans print a drift and how state JSON (`cnm observe`, saved plans) carries it.

    Immutable and compared by value, like a frozen dataclass, but written out: this
    module is imported by every command, and building a dataclass costs about a
    millisecond at import.
    """

    __slots__ = ("reason", "subject")
    reason: DriftReason
    subject: str | None

    def __init__(self, reason: DriftReason, subject: str | None = None) -> None:
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "subject", subject)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Drift is immutable (cannot set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Drift is immutable (cannot delete {name})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Drift) and (self.reason, self.subject) == (
            other.reason, other.subject)

    def __hash__(self) -> int:
        return hash((self.reason, self.subject))

    def __reduce__(self) -> tuple[type[Drift], tuple[DriftReason, str | None]]:
        return (Drift, (self.reason, self.subject))

    def __repr__(self) -> str:
        return f"Drift({self.reason}, {self.subject!r})"

    def __str__(self) -> str:
        note = f"({self.reason.value})"
        return note if self.subject is None else f"{self.subject} {note}"

    @classmethod
    def from_text(cls, text: str) -> Drift | None:
        """The drift whose text form `text` is; None for any other text."""
        for reason in DriftReason:
            note = f"({reason.value})"
            if text == note:
                return cls(reason)
            if text.endswith(f" {note}"):
                return cls(reason, text[:-len(note) - 1])
        return None


class MtuPair:
    """The MTUs of an endpoint's two ends when they differ (cnm always sets one MTU, so
    this is drift: plans show it as `host/sandbox`). Written out like `Drift`."""

    __slots__ = ("host_end", "sandbox_end")
    host_end: int
    sandbox_end: int

    def __init__(self, host_end: int, sandbox_end: int) -> None:
        object.__setattr__(self, "host_end", host_end)
        object.__setattr__(self, "sandbox_end", sandbox_end)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"an MtuPair is immutable (cannot set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"an MtuPair is immutable (cannot delete {name})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MtuPair) and (self.host_end, self.sandbox_end) == (
            other.host_end, other.sandbox_end)

    def __hash__(self) -> int:
        return hash((self.host_end, self.sandbox_end))

    def __reduce__(self) -> tuple[type[MtuPair], tuple[int, int]]:
        return (MtuPair, (self.host_end, self.sandbox_end))

    def __repr__(self) -> str:
        return f"MtuPair({self.host_end}, {self.sandbox_end})"

    def __str__(self) -> str:
        return f"{self.host_end}/{self.sandbox_end}"

    @classmethod
    def from_text(cls, text: str) -> MtuPair | None:
        """The pair whose text form `text` is; None for any other text."""
        host, slash, sandbox = text.partition("/")
        if slash and host.isdigit() and sandbox.isdigit():
            return cls(int(host), int(sandbox))
        return None

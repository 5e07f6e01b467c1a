"""pydantic's validation errors, worded for the user: the path as written, one line each.

pydantic reports a location that may hold a union member's tag or a
validator's name and a message meant for programmers; this turns each error
into the dotted camelCase path of the file (`spec.ipam.0.subnet`) and one line
that says what is wrong with the value and what would be right.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from reconciler.errors import show
from reconciler.model import API_VERSION

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


def is_plain(text: str) -> bool:
    """Short, printable ASCII without spaces: safe to print as is, unquoted."""
    return text.isprintable() and text.isascii() and " " not in text and 0 < len(text) <= 80


def did_you_mean(value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str):
        return ""
    folded = {c.lower().replace("_", ""): c for c in choices}
    exact = folded.get(value.lower().replace("_", ""))
    close = [exact] if exact else difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def error_path(loc: tuple[str | int, ...], data: Any) -> str:
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
    return text if is_plain(text) else show(text)


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


def error_message(detail: ErrorDetails, model: type[BaseModel], path: str) -> str:
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
    return f"{' '.join(detail['msg'].split())} (got {show(value)})"


def _is_yaml_scalar(value: object) -> bool:
    return value is not None and not isinstance(value, dict | list | str)


def _unknown_field_message(model: type[BaseModel], path: str) -> str:
    parts = path.split(".")
    allowed = _fields_at(model, parts[:-1])
    if not allowed:
        return "unknown field; remove it"
    return (
        f"unknown field {show(parts[-1])}; allowed here: {', '.join(allowed)}"
        f"{did_you_mean(parts[-1], allowed)}"
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

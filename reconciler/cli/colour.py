"""Colour for a person at a terminal, and for nobody else.

Colour is on when stdout is a terminal and `TERM` is not `dumb`; `NO_COLOR`
(any non-empty value, no-color.org) turns it off, and `FORCE_COLOR` (non-empty)
turns it on in a pipe (a CI log that renders colour). NO_COLOR wins when both
are set: the safer reading. Only the text plan is coloured; every other output
(JSON, markdown, YAML, messages) never carries an escape code.
"""

from __future__ import annotations

import os
from typing import TextIO

_RESET = "\x1b[0m"
#: A plan line's symbol (render.SYMBOLS) -> its colour: created green, changed
#: yellow, deleted red, replaced magenta, like terraform.
_LINE_COLOURS = (("-/+ ", "\x1b[35m"), ("+ ", "\x1b[32m"), ("~ ", "\x1b[33m"), ("- ", "\x1b[31m"))
_BOLD = "\x1b[1m"


def wanted(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return terminal and os.environ.get("TERM") != "dumb"


def colour_plan(text: str) -> str:
    """A text plan (render.render_text) with its header bold and each action's line in its
    verb's colour; the characters are the same."""
    lines = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        colour = next((c for symbol, c in _LINE_COLOURS if stripped.startswith(symbol)), None)
        if colour is not None and line.startswith(" "):
            line = colour + line + _RESET
        elif line.startswith(("Plan:", "No changes.")):
            line = _BOLD + line + _RESET
        lines.append(line)
    return "\n".join(lines)

"""What the reliability tests tried, for docs/reliability.md.

`CNM_COUNTS_FILE=/tmp/counts.jsonl python3 -m pytest ...` makes every test that
calls `record_count` append one JSON line: {"test": name, "count": n}.
"""

from __future__ import annotations

import json
import os


def record_count(name: str, count: int) -> None:
    """Append a count to $CNM_COUNTS_FILE (nothing when it is unset)."""
    target = os.environ.get("CNM_COUNTS_FILE")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": name, "count": count}) + "\n")

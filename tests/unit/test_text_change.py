"""The `rewrite (+A -R lines)` summary of a file change, fast path against its definition.

A lines of the new text appear nowhere in the old, R lines of the old nowhere in
the new. The renderer skips the lines both texts share at the start and end
(a big network's hosts files differ by one peer's line); this checks it counts
exactly what line sets count, on random edits of random texts.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.render import _changed_line_counts, _text_change

LINES = st.sampled_from(["10.0.0.2\te1", "10.0.0.3\te2 www", "", "a", "a b", "x\ry", "e\u2028f"])


def _by_definition(old: str, new: str) -> tuple[int, int]:
    old_lines, new_lines = set(old.splitlines()), set(new.splitlines())
    return (sum(1 for line in new.splitlines() if line not in old_lines),
            sum(1 for line in old.splitlines() if line not in new_lines))


@st.composite
def edited_texts(draw: st.DrawFn) -> tuple[str, str]:
    old = draw(st.lists(LINES, max_size=12))
    new = list(old)
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, len(new)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        if edit == "insert" or not new:
            new.insert(where, draw(LINES))
        elif edit == "delete":
            del new[min(where, len(new) - 1)]
        else:
            new[min(where, len(new) - 1)] = draw(LINES)
    ends = st.sampled_from(["", "\n"])
    return "\n".join(old) + draw(ends), "\n".join(new) + draw(ends)


@settings(max_examples=3000, deadline=None)
@given(edited_texts())
def test_counts_are_those_of_line_sets(texts: tuple[str, str]) -> None:
    old, new = texts
    assert _changed_line_counts(old, new) == _by_definition(old, new)


def test_one_peer_more_in_a_big_hosts_file() -> None:
    peers = [f"10.0.{i // 256}.{i % 256}\te{i:04d}" for i in range(1000)]
    old = "127.0.0.1\tlocalhost\n" + "\n".join(peers) + "\n"
    new = old.replace(peers[500] + "\n", peers[500] + "\n10.9.9.9\textra\n")
    assert _text_change(old, new) == "rewrite (+1 -0 lines)"
    assert _text_change(new, old) == "rewrite (+0 -1 lines)"
    assert _text_change(old, new.replace("e0010", "e0010 www")) == "rewrite (+2 -1 lines)"
    assert _text_change(None, new) == "write (1002 lines)"
    assert _text_change(old, None) == "remove"

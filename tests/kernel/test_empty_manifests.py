"""An empty manifest set never prunes the world: applying zero objects to a set that owns
objects is refused (one line, nothing changed) unless --allow-empty says it is meant."""

from __future__ import annotations

from pathlib import Path

import pytest
import scenario
from faultlib import canonical, inproc, ok, record_count

from reconciler.engine import EmptyManifestsError, check_not_empty
from reconciler.loader import load_text
from reconciler.state import Resource, ResourceKey, State

from helpers import assert_same_kernel, kernel_dump, netns_names

REFUSAL = ("cnm: the manifests hold no object but apply set 'default' owns 10; applying "
           "would delete them all (use --allow-empty to mean it)")


def _empty_inputs(tmp_path: Path) -> dict[str, list[str]]:
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "comments.yaml").write_text("# nothing here yet\n")
    (tmp_path / "separators.yaml").write_text("---\n---\n...\n")
    (tmp_path / "nulls.yaml").write_text("~\n---\nnull\n")
    (tmp_path / "not-yaml-only").mkdir()
    (tmp_path / "not-yaml-only" / "README.md").write_text("# manifests go here\n")
    return {
        "empty directory": ["-f", str(tmp_path / "empty-dir")],
        "comments only": ["-f", str(tmp_path / "comments.yaml")],
        "separators only": ["-f", str(tmp_path / "separators.yaml")],
        "null documents": ["-f", str(tmp_path / "nulls.yaml")],
        "directory without yaml": ["-f", str(tmp_path / "not-yaml-only")],
        "two empty sources": ["-f", str(tmp_path / "empty-dir"),
                              "-f", str(tmp_path / "comments.yaml")],
    }


def test_empty_manifests_are_refused_for_a_set_that_owns_objects(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    ok("apply", "-f", str(a), "--yes")
    before = kernel_dump()
    inputs = _empty_inputs(tmp_path)
    for name, paths in inputs.items():
        for extra in ([], ["--dry-run"]):
            code, out, err = inproc("apply", *paths, "--yes", *extra)
            assert (code, err.strip()) == (1, REFUSAL), (name, extra, out, err)
    assert_same_kernel(before, kernel_dump())
    record_count("empty manifests refused (inputs x apply/dry-run)", 2 * len(inputs))


def test_allow_empty_prunes_that_set_and_nothing_else(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    other = scenario.write(tmp_path / "other", scenario.OTHER_SET)
    ok("apply", "-f", str(a), "--yes")
    ok("apply", "-f", str(other), "--yes", "--set", "other")
    (tmp_path / "empty").mkdir()
    code, out, err = inproc("plan", "-f", str(tmp_path / "empty"))
    assert code == 0 and "0 to create, 0 to update, 10 to delete." in out  # plan only shows
    err = ok("apply", "-f", str(tmp_path / "empty"), "--yes", "--allow-empty")
    assert "10 deleted" in err  # the resolver too
    assert netns_names() == ["lonely"]
    assert "No changes" in inproc("plan", "-f", str(other), "--set", "other")[1]


def test_empty_manifests_for_a_set_that_owns_nothing_are_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    before = canonical()
    code, out, err = inproc("apply", "-f", str(tmp_path / "empty"), "--yes")
    assert code == 0 and out.startswith("No changes."), err
    code, out, err = inproc("delete", "-f", str(tmp_path / "empty"), "--yes")
    assert code == 0, err
    assert canonical() == before


def test_delete_with_empty_manifests_deletes_nothing(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    ok("apply", "-f", str(a), "--yes")
    (tmp_path / "empty").mkdir()
    before = kernel_dump()
    code, out, _ = inproc("delete", "-f", str(tmp_path / "empty"), "--yes")
    assert code == 0 and out.startswith("No changes.")
    assert_same_kernel(before, kernel_dump())


def _owned(count: int) -> State:
    resources = {
        ResourceKey("Sandbox", f"s{i}"): Resource(ResourceKey("Sandbox", f"s{i}"), "web",
                                                  {"netns": f"s{i}"})
        for i in range(count)
    }
    return State("web", resources)


def test_check_not_empty_rule() -> None:
    empty, one = load_text("# nothing\n"), load_text(
        "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: s}\n")
    with pytest.raises(EmptyManifestsError, match="apply set 'web' owns 3"):
        check_not_empty(empty, _owned(3), allow_empty=False)
    check_not_empty(empty, _owned(3), allow_empty=True)
    check_not_empty(empty, _owned(0), allow_empty=False)
    check_not_empty(one, _owned(3), allow_empty=False)  # not empty: ordinary pruning

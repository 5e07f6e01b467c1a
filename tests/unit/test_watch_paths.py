"""Which changed paths `cnm watch` takes for manifests, and how it names them."""

from __future__ import annotations

from pathlib import Path

from reconciler.watch_paths import WatchedPaths


def test_manifests_are_named_under_the_path_as_given(tmp_path: Path) -> None:
    root = tmp_path / "m"
    (root / "sub").mkdir(parents=True)
    paths = WatchedPaths([str(root)])
    real = root.resolve()
    assert paths.manifest_file("modified", real / "a.yaml") == str(root / "a.yaml")
    assert paths.manifest_file("added", real / "sub" / "b.yml") == str(root / "sub" / "b.yml")
    assert paths.manifest_file("modified", real / "notes.txt") is None
    assert paths.manifest_file("deleted", real / "sub") == str(root / "sub")  # a whole dir
    assert paths.manifest_file("modified", real / ".git" / "x.yaml") is None
    assert paths.manifest_file("modified", tmp_path / "elsewhere.yaml") is None
    assert paths.manifest_file("modified", real) == str(root)
    assert paths.display_name(str(root / "sub" / "b.yml")) == "sub/b.yml"


def test_a_single_file_is_watched_through_its_directory(tmp_path: Path) -> None:
    file = tmp_path / "all.yaml"
    file.write_text("")
    extra = tmp_path / "run" / "netns"
    paths = WatchedPaths([str(file)])
    assert paths.directories(extra) == sorted([tmp_path.resolve(), extra])
    assert extra.is_dir()
    assert paths.display_name(str(file)) == "all.yaml"

"""LoadCache: `load()` for `cnm watch`, reparsing only the files that changed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reconciler import loader
from reconciler.errors import ManifestError

ROOT = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path) -> Path:
    target = tmp_path / "m"
    shutil.copytree(ROOT / "examples" / "quickstart", target,
                    ignore=shutil.ignore_patterns("*.sh"))
    return target


def test_same_result_as_load(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    cached = loader.LoadCache().load([str(tree)])
    fresh = loader.load([str(tree)])
    assert cached.objects() == fresh.objects()
    assert cached.sources == fresh.sources


def test_unchanged_tree_returns_the_same_object_and_parses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    first = cache.load([str(tree)])
    parsed: list[str] = []
    original = loader.LoadCache._parse_file
    monkeypatch.setattr(loader.LoadCache, "_parse_file",
                        staticmethod(lambda f, s: parsed.append(f) or original(f, s)))
    assert cache.load([str(tree)]) is first and parsed == []
    sandboxes = tree / "sandboxes.yaml"
    sandboxes.write_text(sandboxes.read_text().replace("hostname: web2", "hostname: two"))
    changed = cache.load([str(tree)])
    assert parsed == [str(sandboxes)]
    assert changed.sandboxes["web2"].spec.hostname == "two"
    assert changed.networks["frontend"] is first.networks["frontend"]  # reused as is


def test_forget_reparses_a_change_within_one_timestamp_tick(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    cache.load([str(tree)])
    sandboxes = tree / "sandboxes.yaml"
    stat = sandboxes.stat()
    sandboxes.write_text(sandboxes.read_text().replace("hostname: web2", "hostname: zzzz"))
    os.utime(sandboxes, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cache.forget(str(sandboxes))
    assert cache.load([str(tree)]).sandboxes["web2"].spec.hostname == "zzzz"


def test_errors_are_those_of_load_and_the_cache_recovers(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    cache.load([str(tree)])
    network = tree / "network.yaml"
    good = network.read_text()
    network.write_text(good + "---\napiVersion: cnm/v1\nkind: Network\nmetadata: {name: ")
    with pytest.raises(ManifestError) as cached:
        cache.load([str(tree)])
    with pytest.raises(ManifestError) as fresh:
        loader.load([str(tree)])
    assert str(cached.value) == str(fresh.value) and "network.yaml" in str(cached.value)
    network.write_text(good)
    assert "frontend" in cache.load([str(tree)]).networks


def test_removed_and_added_files(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    cache.load([str(tree)])
    cache.forget(str(tree / "endpoints.yaml"))  # as a file watcher reports the deletion
    (tree / "endpoints.yaml").unlink()
    assert not cache.load([str(tree)]).endpoints
    assert cache.changed == [str(tree / "endpoints.yaml")]
    (tree / "extra.yaml").write_text(
        "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: web3}\n")
    assert "web3" in cache.load([str(tree)]).sandboxes

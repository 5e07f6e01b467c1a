"""`LoadCache` validates only the objects whose inputs changed, and still catches every
problem: each case edits ONE file and compares with a fresh `loader.load`."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import loader, validation
from reconciler.errors import ManifestError

NETWORK = ("apiVersion: cnm/v1\nkind: Network\nmetadata: {name: net}\n"
           "spec: {ipam: [{subnet: 10.70.0.0/24}]}\n")


def pair(i: int, endpoint_spec: str = "") -> str:
    return (f"apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {{name: s{i}}}\n---\n"
            f"apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {{name: e{i}}}\n"
            f"spec: {{network: net, sandbox: s{i}{endpoint_spec}}}\n")


def _tree(tmp_path: Path, count: int = 5) -> Path:
    tree = tmp_path / "m"
    tree.mkdir()
    (tree / "network.yaml").write_text(NETWORK)
    for i in range(count):
        (tree / f"s{i}.yaml").write_text(pair(i))
    return tree


def _outcome(load: object) -> object:
    """The manifests' objects, or the problems' text."""
    try:
        manifests = load()  # type: ignore[operator]
    except ManifestError as exc:
        return [str(p) for p in exc.problems]
    return manifests.objects()


def _same_as_fresh(cache: loader.LoadCache, tree: Path) -> object:
    cached = _outcome(lambda: cache.load([str(tree)]))
    assert cached == _outcome(lambda: loader.load([str(tree)]))
    return cached


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the endpoints whose own rules ran."""
    names: list[str] = []
    original = validation.check_endpoint

    def counting(report: object, endpoint: object) -> None:
        names.append(endpoint.metadata.name)  # type: ignore[attr-defined]
        original(report, endpoint)  # type: ignore[arg-type]

    monkeypatch.setattr(validation, "check_endpoint", counting)
    return names


def test_an_edit_checks_only_the_edited_objects(tmp_path: Path, checked: list[str]) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    _same_as_fresh(cache, tree)
    checked.clear()
    (tree / "s2.yaml").write_text(pair(2, ", aliases: [two]"))
    assert cache.load([str(tree)]).endpoints["e2"].spec.aliases == ["two"]
    assert checked == ["e2"]


def test_an_added_and_a_removed_file(tmp_path: Path, checked: list[str]) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    _same_as_fresh(cache, tree)
    checked.clear()
    (tree / "s9.yaml").write_text(pair(9))
    assert "e9" in cache.load([str(tree)]).endpoints
    assert checked == ["e9"]
    (tree / "s9.yaml").unlink()
    (tree / "s1.yaml").unlink()
    assert sorted(_same_as_fresh(cache, tree) and cache.load([str(tree)]).endpoints) == [
        "e0", "e2", "e3", "e4"]


def test_a_static_address_clash_made_by_one_file_is_caught(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "s0.yaml").write_text(pair(0, ", ipv4Address: 10.70.0.50"))
    cache = loader.LoadCache()
    _same_as_fresh(cache, tree)
    (tree / "s3.yaml").write_text(pair(3, ", ipv4Address: 10.70.0.50"))
    problems = _same_as_fresh(cache, tree)
    assert isinstance(problems, list) and len(problems) == 1
    assert "Endpoint/e3" in problems[0] and "already used by Endpoint/e0" in problems[0]
    (tree / "s3.yaml").write_text(pair(3))  # fixed again
    assert "e3" in cache.load([str(tree)]).endpoints


def test_an_interface_name_and_gateway_clash_in_one_sandbox(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    second = ("---\napiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: f1}\n"
              "spec: {network: net, sandbox: s1, ifname: eth5, gateway: true}\n")
    cache = loader.LoadCache()
    _same_as_fresh(cache, tree)
    (tree / "extra.yaml").write_text(second)
    assert "f1" in cache.load([str(tree)]).endpoints
    (tree / "s1.yaml").write_text(pair(1, ", ifname: eth5, gateway: true"))
    problems = _same_as_fresh(cache, tree)
    assert isinstance(problems, list) and len(problems) == 2
    assert any("ifname eth5" in p for p in problems)
    assert any("default route" in p for p in problems)


def test_an_unchanged_endpoint_loses_its_network(tmp_path: Path, checked: list[str]) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    _same_as_fresh(cache, tree)
    (tree / "network.yaml").write_text(NETWORK.replace("name: net", "name: other"))
    problems = _same_as_fresh(cache, tree)
    assert isinstance(problems, list) and len(problems) == 5
    assert all('unknown network "net"' in p for p in problems)
    (tree / "network.yaml").write_text(NETWORK)
    checked.clear()
    assert len(cache.load([str(tree)]).endpoints) == 5
    assert sorted(checked) == ["e0", "e1", "e2", "e3", "e4"]  # their network is a new object


def test_an_unchanged_endpoint_loses_its_sandbox(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "e9.yaml").write_text(pair(9).split("---\n")[1].replace("sandbox: s9", "sandbox: s4"))
    cache = loader.LoadCache()
    _same_as_fresh(cache, tree)
    (tree / "s4.yaml").write_text(pair(4).split("---\n")[1].replace("sandbox: s4", "sandbox: s0"))
    problems = _same_as_fresh(cache, tree)
    assert isinstance(problems, list) and len(problems) == 1
    assert "Endpoint/e9" in problems[0] and 'unknown sandbox "s4"' in problems[0]


def test_a_bad_object_is_checked_again_every_time(tmp_path: Path, checked: list[str]) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    (tree / "s2.yaml").write_text(pair(2, ", ipv4Address: 10.70.0.1"))  # the gateway
    first = _same_as_fresh(cache, tree)
    assert isinstance(first, list) and "gateway" in first[0]
    checked.clear()
    (tree / "s3.yaml").write_text(pair(3, ", aliases: [three]"))
    assert _outcome(lambda: cache.load([str(tree)])) == first
    assert sorted(checked) == ["e2", "e3"]


def test_a_duplicate_name_turns_remembering_off(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    cache = loader.LoadCache()
    _same_as_fresh(cache, tree)
    (tree / "a-first.yaml").write_text(pair(3, ", ipv4Address: 10.70.0.0"))
    problems = _same_as_fresh(cache, tree)
    assert isinstance(problems, list) and any("duplicate name" in p for p in problems)

"""The plain model (`cnm validate`'s start-up) against the pydantic model, its oracle.

The plain model may give up on a document (then pydantic decides), but whatever
it accepts, the pydantic model must accept too, with the very same values and
properties. Generated documents: schema-shaped ones (mostly valid), mutated ones
(wrong types, holes, extra keys) and ones holding the values lax pydantic would
coerce. Then the whole of `cnm validate`: every manifest directory of the
repository loads to the same objects through quick_load as through the loader,
a bad one to the same error (tests/unit/test_startup.py: a good one without
importing pydantic).
"""

from __future__ import annotations

import copy
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile import (
    WRONG_VALUES,
    _paths,
    _remove,
    _replace,
    budget,
    mutated_documents,
    schema_documents,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from reconciler import loader, model, plain_model, quick_load
from reconciler.errors import ManifestError
from reconciler.manifest_values import ALIASES
from reconciler.yaml_documents import read_documents

ROOT = Path(__file__).resolve().parents[2]

#: each pydantic model and its plain counterpart
PAIRS = [(getattr(model, name), getattr(plain_model, name)) for name in (
    "IpamPool", "NetworkSpec", "DnsConfig", "SandboxSpec", "PortMapping", "EndpointSpec",
    "Metadata", "Network", "Sandbox", "Endpoint")]

#: values that lax pydantic would turn into another type (the plain model must not)
LAX_VALUES: list[Any] = ["1", "80", "1500", 1.0, 80.0, 1500.0, "true", "false", "yes", 1, 0,
                         "10.89.0.1", "10.89.0.0/24", "02:42:0A:59:00:0A", "null", "bridge"]


def plain_dump(value: Any) -> Any:
    """A plain object as `model_dump()` gives a pydantic one (by alias)."""
    if isinstance(value, plain_model._Plain):
        return {ALIASES.get(n, n): plain_dump(getattr(value, n)) for n in value.__slots__}
    if isinstance(value, list):
        return [plain_dump(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_dump(item) for key, item in value.items()}
    return value


def properties(obj: Any) -> list[Any]:
    """Every property and method result the validation rules read."""
    found: list[Any] = [obj.key]
    if obj.kind == "Network":
        found += [obj.bridge_name, *(pool.effective_gateway() for pool in obj.spec.ipam)]
    if obj.kind == "Sandbox":
        found += [obj.netns_name, obj.effective_hostname]
    return found


def agree(data: Any) -> bool:
    """Whether the plain model accepted `data`; if it did, pydantic must agree on all."""
    if not isinstance(data, dict):
        return False
    try:
        plain = plain_model.plain_object(data)
    except plain_model.Unsure:
        return False
    pydantic_class = model.MODELS[data["kind"]]
    try:
        checked = pydantic_class.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as error:
        raise AssertionError(f"the plain model accepted what pydantic refuses: {data!r}\n"
                             f"{error}") from None
    # repr: True == 1 and 1.0 == 1, but a bool or float where pydantic has an int is wrong
    assert repr(plain_dump(plain)) == repr(checked.model_dump())
    assert repr(properties(plain)) == repr(properties(checked))
    return True


def test_the_plain_objects_have_the_pydantic_fields_in_order() -> None:
    for pydantic_class, plain_class in PAIRS:
        assert issubclass(pydantic_class, BaseModel)
        assert plain_class.__slots__ == tuple(pydantic_class.model_fields), plain_class
        assert [ALIASES.get(n, n) for n in plain_class.__slots__] == [
            field.validation_alias or name  # the alias generator's, where it gives one
            if isinstance(field.validation_alias, str) else ALIASES.get(name, name)
            for name, field in pydantic_class.model_fields.items()]


def test_plain_objects_are_values_and_frozen_as_pydantic_s_are() -> None:
    reference = list(yaml.safe_load_all((ROOT / "manifests/examples/reference.yaml").read_text()))
    for data in [*reference, *OTHER_FIELDS]:
        plain, again = plain_model.plain_object(data), plain_model.plain_object(data)
        checked = model.MODELS[data["kind"]].model_validate(data, by_alias=True, by_name=False)
        assert plain is not again and plain == again
        assert copy.deepcopy(plain) == plain == copy.copy(plain)
        assert (plain == plain_model.plain_object({**data, "metadata": {"name": "other"}})) is (
            checked == model.MODELS[data["kind"]].model_validate(
                {**data, "metadata": {"name": "other"}}, by_alias=True, by_name=False))
        with pytest.raises(AttributeError):
            plain.kind = "x"
        with pytest.raises(AttributeError):
            del plain.kind
        with pytest.raises(TypeError):  # a field holds a dict or list: unhashable, as pydantic's
            hash(plain)
        with pytest.raises(TypeError):
            hash(checked)
    port = plain_model.plain_object(reference[4]).spec.ports[0]
    assert hash(port) == hash(copy.deepcopy(port))  # every field hashable: a value's hash


@pytest.mark.parametrize("kind", ["Network", "Sandbox"])
def test_the_defaults_are_pydantic_s(kind: str) -> None:
    assert agree({"apiVersion": "cnm/v1", "kind": kind, "metadata": {"name": "a"}})


def test_schema_documents_the_plain_model_accepts_are_pydantic_s_to_the_value() -> None:
    seen, accepted = [0], [0]

    @budget(300)
    @given(schema_documents())
    def check(documents: list[Any]) -> None:
        for data in documents:
            seen[0] += 1
            accepted[0] += agree(data)

    check()
    # Not a model that gives up on everything: most schema-shaped documents are valid.
    assert accepted[0] >= seen[0] // 4, (accepted, seen)


def test_mutated_documents_are_accepted_only_as_pydantic_accepts_them() -> None:
    @budget(300)
    @given(mutated_documents())
    def check(documents: list[Any]) -> None:
        for data in documents:
            agree(data)

    check()


@st.composite
def lax_documents(draw: Any) -> dict[str, Any]:
    """A schema document with one value swapped for one that lax pydantic would coerce."""
    document = draw(schema_documents())[0]
    paths = [p for p in _paths(document) if p[:1] != ("kind",)]
    if paths:
        document = _replace(document, draw(st.sampled_from(paths)),
                            draw(st.sampled_from(LAX_VALUES)))
    return dict(document)


def test_values_lax_pydantic_would_coerce_are_taken_as_pydantic_takes_them() -> None:
    @budget(300)
    @given(lax_documents())
    def check(data: dict[str, Any]) -> None:
        agree(data)

    check()


#: fields the reference manifest leaves out
OTHER_FIELDS = [
    {"apiVersion": "cnm/v1", "kind": "Network", "metadata": {"name": "lan"},
     "spec": {"driver": "macvlan", "parent": "eth0", "mode": "bridge", "hostFirewall": "accept"}},
    {"apiVersion": "cnm/v1", "kind": "Network", "metadata": {"name": "ov"},
     "spec": {"driver": "overlay", "vni": 42}},
    {"apiVersion": "cnm/v1", "kind": "Network", "metadata": {"name": "none"},
     "spec": {"driver": None}},
    {"apiVersion": "cnm/v1", "kind": "Sandbox", "metadata": {"name": "s"},
     "spec": {"host": "node-1", "dns": None}},
]


def test_every_value_at_every_field_is_taken_only_as_pydantic_takes_it() -> None:
    """Each field of the reference manifest (and the fields it leaves out) replaced by
    each wrong or coercible value, removed, or given an unknown neighbour."""
    reference = list(yaml.safe_load_all((ROOT / "manifests/examples/reference.yaml").read_text()))
    documents = [*reference, *OTHER_FIELDS]
    accepted = sum(agree(document) for document in documents)
    assert accepted == len(documents)
    for document in documents:
        for path in _paths(document):
            for value in [*WRONG_VALUES, *LAX_VALUES]:
                agree(_replace(document, path, value))
            agree(_remove(document, path))
            parent = path[:-1]
            for extra in ("nmae", "ip_range", "extra_hosts"):
                target = document
                for part in parent:
                    target = target[part]
                if isinstance(target, dict):
                    agree(_replace(document, parent, {**target, extra: "x"}) if parent
                          else {**document, extra: "x"})


def manifest_directories() -> list[Path]:
    found = {path.parent for pattern in ("examples/**/*.yaml", "manifests/**/*.yaml",
                                         "tests/cases/**/*.yaml")
             for path in ROOT.glob(pattern)}
    return sorted(found)


def outcome(load: Any, path: Path) -> str:
    """What loading `path` gives, as text: every object and its source, or the error."""
    try:
        manifests = load([str(path)], stdin=StringIO(""))
    except ManifestError as error:
        return f"error: {error}"
    return repr([(obj.key, plain_dump(obj) if isinstance(obj, plain_model._Plain)
                  else obj.model_dump(), manifests.source_of(obj.key))
                 for obj in manifests.objects()])


@pytest.mark.parametrize("path", manifest_directories(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_directory_loads_alike_and_through_the_plain_model(path: Path) -> None:
    def through_loader(paths: list[str], stdin: StringIO) -> Any:
        return loader.load(paths, stdin=stdin, external_networks=True)

    quick = outcome(quick_load.load, path)
    assert quick == outcome(through_loader, path)
    if quick.startswith("error: "):  # not manifests (a CI workflow) or not valid ones
        return
    problems: list[Any] = []
    documents = read_documents([str(path)], None, problems)
    assert documents and not problems
    for document in documents:  # valid manifests take the fast path
        assert agree(document.data), (path, document.index)


def test_a_problem_is_worded_by_pydantic_from_the_documents_already_read() -> None:
    text = ("apiVersion: cnm/v1\nkind: Network\nmetadata: {name: a}\nspec: {mtu: '9000'}\n"
            "---\napiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: e}\n"
            "spec: {network: b}\n")
    with pytest.raises(ManifestError) as quick:
        quick_load.load(["-"], stdin=StringIO(text))
    with pytest.raises(ManifestError) as full:
        loader.load(["-"], stdin=StringIO(text), external_networks=True)
    assert str(quick.value) == str(full.value)
    assert "spec.mtu" in str(quick.value)

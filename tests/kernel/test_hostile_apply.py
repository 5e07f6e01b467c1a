"""Hostile input through `cnm apply` against a live kernel: refused in one line per problem,
and the kernel (links, addresses, routes of every namespace, /etc/netns) is exactly as
before - not a byte changed - for every input tried.

The kernel holds scenario A, applied by cnm, next to foreign objects. Each example
adds one hostile file to A's manifest directory and runs apply (in-process, so that
hundreds of examples fit the CI budget).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import scenario
from faultlib import ok, record_count, snapshot
from hostile import (
    budget,
    check_refusal,
    dump,
    hostile_texts,
    mutated_documents,
    run_cli,
    spliced_bytes,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from helpers import _settled, json_diff


def _kernel() -> Any:
    return _settled(snapshot())


def _foreign() -> None:
    for command in (
        "link add br-mine type bridge", "addr add 10.89.0.200/24 dev br-mine",
        "link add fv0 type veth peer name fv1", "netns add theirs",
    ):
        subprocess.run(["ip", *command.split()], check=True)


def _prepare(tmp_path: Path) -> tuple[Path, Path]:
    directory = scenario.write(tmp_path / "m", scenario.STATE_A)
    _foreign()
    ok("apply", "-f", str(directory), "--yes")
    return directory, directory / "zz-hostile.yaml"


def _refused_without_change(directory: Path, hostile: Path, before: Any) -> None:
    code, out, err = run_cli("apply", "-f", str(directory), "--yes")
    check_refusal(code, out, err, [str(hostile), str(directory / "all.yaml")])
    after = _kernel()
    assert after == before, f"a refused apply changed the kernel:\n{json_diff(before, after)}"


def _invalid(directory: Path) -> bool:
    """The manifests as apply reads them - A's file and the hostile one together - are
    invalid. (The hostile file alone is not enough: an Endpoint on network `frontend`
    is invalid by itself but fine next to A, and applying it is not a refusal.)"""
    return run_cli("validate", "-f", str(directory))[0] == 1


def test_fuzz_hostile_manifests_through_apply_change_nothing(tmp_path: Path) -> None:
    directory, hostile = _prepare(tmp_path)
    before = _kernel()
    tried: list[int] = []

    def each_refused(examples: int, inputs: st.SearchStrategy[str] | st.SearchStrategy[bytes],
                     ) -> None:
        @budget(examples)
        @given(inputs)
        def check(data: str | bytes) -> None:
            if isinstance(data, bytes):
                hostile.write_bytes(data)
            else:
                hostile.write_text(data)
            assume(_invalid(directory))
            _refused_without_change(directory, hostile, before)
            tried.append(1)

        check()

    each_refused(60, st.one_of(mutated_documents().map(dump), hostile_texts()))
    each_refused(40, st.binary(max_size=2000) | spliced_bytes())
    assert _kernel() == before
    record_count("fuzz: hostile manifests through apply, kernel byte-identical", len(tried))


CORPUS = {
    "traversal in netns": "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: evil}\n"
                          "spec: {netns: ../../etc/cnm-evil}\n",
    "traversal in a sandbox name": "apiVersion: cnm/v1\nkind: Sandbox\n"
                                   "metadata: {name: ../../etc/evil}\n",
    "absolute netns": "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: evil}\n"
                      "spec: {netns: /etc/cnm-evil}\n",
    "bidi bridge name": "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: evil}\n"
                        "spec: {bridge: \"br\\u202e0\", ipam: [{subnet: 10.99.0.0/24}]}\n",
    "bridge name too long": "apiVersion: cnm/v1\nkind: Network\nmetadata: {name: evil}\n"
                            "spec: {bridge: br-0123456789abcdef, ipam: [{subnet: 10.99.0.0/24}]}\n",
    "hosts injection": "apiVersion: cnm/v1\nkind: Sandbox\nmetadata: {name: evil}\n"
                       "spec: {hostname: \"x\\n10.0.0.1 bank\"}\n",
    "shell in ifname": "apiVersion: cnm/v1\nkind: Endpoint\nmetadata: {name: evil}\n"
                       "spec: {network: frontend, sandbox: web1, gateway: false,\n"
                       "       ifname: \"$(reboot)\"}\n",
    "alias bomb": "a: &a [x,x,x,x]\nb: &b [*a,*a,*a,*a]\nc: [*b,*b,*b,*b]\n",
    "binary": "\x7fELF\x02\x01",
}


def test_hostile_corpus_through_apply_changes_nothing(tmp_path: Path) -> None:
    directory, hostile = _prepare(tmp_path)
    before = _kernel()
    for name, text in CORPUS.items():
        hostile.write_text(text)
        code, out, err = run_cli("apply", "-f", str(directory), "--yes")
        lines = check_refusal(code, out, err, [str(hostile), str(directory / "all.yaml")])
        assert _kernel() == before, name
        assert not any(Path(p).exists() for p in ("/etc/cnm-evil", "/run/cnm-evil", "/etc/evil",
                                                  "/run/evil")), name
        if name not in ("alias bomb", "binary"):
            assert any(line.startswith(f"{hostile}:") and "/evil: " in line for line in lines), (
                name, lines)
    # a FIFO and a huge file in the manifest directory
    hostile.unlink()
    os.mkfifo(directory / "fifo.yaml")
    (directory / "huge.yaml").write_bytes(b"#" * (10 * 1024 * 1024 + 1))
    code, out, err = run_cli("apply", "-f", str(directory), "--yes")
    assert len(check_refusal(code, out, err, [str(directory / "fifo.yaml"),
                                              str(directory / "huge.yaml")])) == 2
    assert _kernel() == before
    record_count("hostile corpus through apply", len(CORPUS) + 2)

"""Debris of a killed apply (cnm's link group, no label) is removed; nothing that could be
anyone else's is: a label of its own, an address, a port, a name cnm would not derive."""

from __future__ import annotations

import subprocess
from pathlib import Path

import scenario
from faultlib import inproc, ok

from helpers import links

GROUP = str(0x636E6D)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def test_debris_is_named_by_plan_and_removed_by_apply(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    ok("apply", "-f", str(a), "--yes")
    _ip("link", "add", "br-extra", "group", GROUP, "type", "bridge")  # as a crash leaves it
    _ip("link", "add", "cnm0123456ab", "group", GROUP, "type", "veth", "peer", "name", "p0")
    code, out, err = inproc("plan", "-f", str(a))
    assert code == 0 and out.startswith("No changes.")
    assert err == ("Note: apply will also remove bridge br-extra, veth cnm0123456ab, left "
                   "behind by an interrupted cnm run.\n")
    code, out, err = inproc("apply", "-f", str(a), "--yes")
    assert code == 0, err
    assert err.startswith("removed bridge br-extra, veth cnm0123456ab left behind by an "
                          "interrupted cnm run\n")
    assert not {"br-extra", "cnm0123456ab", "p0"} & set(links())
    assert inproc("plan", "-f", str(a))[2] == ""


def test_debris_is_removed_only_once_the_plan_is_accepted(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    _ip("link", "add", "br-extra", "group", GROUP, "type", "bridge")
    code, out, err = inproc("apply", "-f", str(a), "--dry-run")
    assert code == 0 and "10 to create" in out and "br-extra" in links()  # the resolver too
    code, out, err = inproc("apply", "-f", str(a))  # no --yes, no terminal: refused
    assert code == 1 and "br-extra" in links()
    assert err.startswith("Note: apply will also remove bridge br-extra, left behind by an "
                          "interrupted cnm run.\n")
    code, out, err = inproc("apply", "-f", str(a), "--yes")
    assert code == 0 and "br-extra" not in links()


def test_what_might_be_someone_elses_is_left_alone(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    _ip("link", "add", "br-labelled", "group", GROUP, "type", "bridge")
    _ip("link", "set", "br-labelled", "alias", "mine, not cnm's")
    _ip("link", "add", "br-addressed", "group", GROUP, "type", "bridge")
    _ip("addr", "add", "10.123.0.1/24", "dev", "br-addressed")
    _ip("link", "add", "br-up", "group", GROUP, "type", "bridge")
    _ip("link", "set", "br-up", "up")
    _ip("link", "add", "br-ported", "group", GROUP, "type", "bridge")
    _ip("link", "add", "port0", "master", "br-ported", "type", "veth", "peer", "name", "port1")
    _ip("link", "add", "myveth0", "group", GROUP, "type", "veth", "peer", "name", "myveth1")
    before = set(links())
    ok("apply", "-f", str(a), "--yes")
    ok("delete", "-f", str(a), "--yes")
    assert before <= set(links())
    assert inproc("plan", "-f", str(a))[2] == ""


def test_a_name_held_by_a_labelled_group_member_is_a_plan_time_conflict(tmp_path: Path) -> None:
    a = scenario.write(tmp_path / "a", scenario.STATE_A)
    _ip("link", "add", "br-frontend", "group", GROUP, "type", "bridge")
    _ip("link", "set", "br-frontend", "alias", "someone else's")
    code, _, err = inproc("apply", "-f", str(a), "--yes")
    assert code == 1
    assert err == ("cnm: Network/frontend: link br-frontend is taken by link br-frontend "
                   "(not owned by cnm)\n")

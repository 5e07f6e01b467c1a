"""The `cnm` command line as its peers behave (docs/cli.md): exit codes, each command's
own usage, help with an example, a closed pipe, colour, `apply --dry-run` as `plan`,
messages that say what happened. Every test runs the real console script."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "tests" / "cases" / "update-mtu"  # manifests + a snapshot: 3 updates
SAME = ROOT / "tests" / "cases" / "no-changes"  # manifests + a snapshot: no change
PLAN_CHANGES = ("-f", str(CASE / "manifests"), "--observed", str(CASE / "observed.json"))
PLAN_NOTHING = ("-f", str(SAME / "manifests"), "--observed", str(SAME / "observed.json"))
ESCAPE = "\x1b"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def cnm(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                          text=True, cwd=ROOT, env=_env(**env), timeout=60)


def _commands() -> dict[str, object]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return dict(sub.choices)  # type: ignore[arg-type]


# -- usage errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("plan", "--bogus"), ("plan", "-f", "x", "--bogus"), ("bogus",), ("plan",), (),
    ("validate", "-f", "x", "extra"), ("plan", "-f", "x", "-o", "yaml"),
    ("apply", "-f", "x", "--lock-timeout", "soon"), ("completion", "tcsh"),
])
def test_usage_errors_exit_1_not_2(args: tuple[str, ...]) -> None:
    result = cnm(*args)
    assert result.returncode == 1, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert "error:" in result.stderr.splitlines()[-1]


def test_a_bad_flag_prints_the_commands_own_usage() -> None:
    result = cnm("plan", "--bogus")
    assert result.stderr.startswith("usage: cnm plan ")
    assert result.stderr.splitlines()[-1] == "cnm plan: error: unrecognized arguments: --bogus"
    result = cnm("get", "--detailed-exitcode")
    assert result.stderr.startswith("usage: cnm get ")


def test_version() -> None:
    result = cnm("--version")
    assert result.returncode == 0 and re.fullmatch(r"cnm \d+\.\d+\.\d+\S*\n", result.stdout)


# -- help -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_has_a_description_and_an_example(command: str) -> None:
    summary = {a.dest: a.help for a in build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
               ._choices_actions}[command]
    result = cnm(command, "--help")
    assert result.returncode == 0
    text = result.stdout
    description = text.split("\n\n")[1]
    assert len(description) > len(summary or ""), "a description beyond the one-line summary"
    example = text.split("\nexample:\n", 1)[1]
    lines = [line.strip() for line in example.splitlines() if line.strip()]
    assert lines and all(line.split()[0] in ("cnm", "cat", "source") or "cnm " in line
                         for line in lines), lines
    assert any(f"cnm {command}" in line for line in lines)


# -- a closed pipe --------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("schema",), ("--help",), ("plan", "--help"), ("plan", *PLAN_CHANGES),
    ("plan", *PLAN_CHANGES, "-o", "json"), ("export", "--observed", str(CASE / "observed.json")),
    ("completion", "bash"),
])
def test_a_closed_pipe_ends_quietly(args: tuple[str, ...]) -> None:
    """`cnm schema | head -1`: the reader is gone before cnm writes (made certain here by
    closing the pipe's read end first)."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "reconciler", *args], stdout=write,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(),
                                timeout=60)
    finally:
        os.close(write)
    assert result.stderr == "", "no traceback, no message: nobody reads it"
    assert result.returncode == 1, "output that never arrived is a failure, help included"


def test_a_pipe_that_reads_one_line_gets_it() -> None:
    result = subprocess.run(f"{sys.executable} -m reconciler schema | head -1", shell=True,
                            capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=60)
    assert result.stdout == "{\n" and result.stderr == ""


# -- colour ---------------------------------------------------------------------------------

def _on_a_terminal(*args: str, **env: str) -> str:
    """stdout of `cnm ARGS` run on a pseudo-terminal."""
    main, child = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "reconciler", *args], stdout=child,
                                   stderr=subprocess.DEVNULL, cwd=ROOT,
                                   env=_env(TERM="xterm", **env))
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(main)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_only() -> None:
    coloured = _on_a_terminal("plan", *PLAN_CHANGES)
    assert "\x1b[33m  ~ Network/frontend" in coloured and "\x1b[1mPlan:" in coloured
    assert ESCAPE not in _on_a_terminal("plan", *PLAN_CHANGES, NO_COLOR="1")
    assert ESCAPE not in _on_a_terminal("plan", *PLAN_CHANGES, "-o", "json")
    assert ESCAPE not in cnm("plan", *PLAN_CHANGES).stdout  # a pipe
    assert ESCAPE in cnm("plan", *PLAN_CHANGES, FORCE_COLOR="1").stdout
    assert ESCAPE not in cnm("plan", *PLAN_CHANGES, FORCE_COLOR="1", NO_COLOR="1").stdout


def test_colour_changes_no_character() -> None:
    plain = cnm("plan", *PLAN_CHANGES).stdout
    coloured = cnm("plan", *PLAN_CHANGES, FORCE_COLOR="1").stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_no_escape_codes_in_pipes_anywhere() -> None:
    outputs = [cnm(*args) for args in (
        ("plan", *PLAN_CHANGES), ("plan", *PLAN_CHANGES, "-o", "markdown"),
        ("plan", *PLAN_NOTHING), ("validate", "-f", str(CASE / "manifests")), ("schema",),
        ("export", "--observed", str(CASE / "observed.json")), ("plan", "--bogus"),
        ("apply", "--dry-run", *PLAN_CHANGES),
    )]
    for result in outputs:
        assert ESCAPE not in result.stdout + result.stderr, result.args


# -- apply --dry-run is plan ----------------------------------------------------------------

def test_apply_dry_run_takes_every_flag_of_plan() -> None:
    commands = _commands()

    def flags(command: str) -> set[str]:
        parser = commands[command]
        return {s for a in parser._actions for s in a.option_strings}  # type: ignore[attr-defined]

    assert flags("plan") - {"-h", "--help"} <= flags("apply")


@pytest.mark.parametrize("extra", [
    ("--detailed-exitcode",), ("-o", "json"), ("-o", "markdown"), ("--detailed-exitcode", "-o",
                                                                    "json"),
    ("--default-address-pool", "base=10.200.0.0/16,size=24"),
])
def test_apply_dry_run_is_exactly_plan(extra: tuple[str, ...]) -> None:
    for case in (PLAN_CHANGES, PLAN_NOTHING):
        planned = cnm("plan", *case, *extra)
        dry = cnm("apply", "--dry-run", *case, *extra)
        assert (dry.returncode, dry.stdout, dry.stderr) == \
               (planned.returncode, planned.stdout, planned.stderr)
    assert cnm("apply", "--dry-run", *PLAN_CHANGES, "--detailed-exitcode").returncode == 2
    assert cnm("apply", "--dry-run", *PLAN_NOTHING, "--detailed-exitcode").returncode == 0


def test_apply_dry_run_saves_the_plan_as_plan_does(tmp_path: Path) -> None:
    by_plan, by_apply = tmp_path / "plan.json", tmp_path / "apply.json"
    assert cnm("plan", *PLAN_CHANGES, "-out", str(by_plan)).returncode == 0
    assert cnm("apply", "--dry-run", *PLAN_CHANGES, "-out", str(by_apply)).returncode == 0
    assert by_plan.read_text() == by_apply.read_text()


@pytest.mark.parametrize("flag", [("--detailed-exitcode",), ("-o", "markdown"),
                                  ("-out", "x.json")])
def test_plan_flags_without_dry_run_are_refused(flag: tuple[str, ...], tmp_path: Path) -> None:
    result = cnm("apply", *PLAN_CHANGES, *flag, "--yes")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "only with --dry-run" in result.stderr
    assert not (ROOT / "x.json").exists()


# -- messages -------------------------------------------------------------------------------

def test_a_missing_snapshot_file_is_called_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    for command in ("plan", "export"):
        files = ("-f", str(CASE / "manifests")) if command == "plan" else ()
        result = cnm(command, *files, "--observed", str(missing))
        assert result.returncode == 1
        assert result.stderr == (f"cnm: {missing}: no such file (--observed wants a snapshot "
                                 "written by `cnm observe -o json`)\n")


def test_a_file_that_is_no_snapshot_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = cnm("plan", "-f", str(CASE / "manifests"), "--observed", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(f"cnm: {bad}: not an observed-state snapshot")
    assert result.stderr.count("\n") == 1


def test_a_plan_against_a_snapshot_does_not_claim_the_kernel() -> None:
    for output in ("text", "markdown"):
        result = cnm("plan", *PLAN_NOTHING, "-o", output)
        assert result.returncode == 0
        assert "kernel" not in result.stdout.lower()
        assert f"The snapshot {SAME / 'observed.json'} matches the manifests." in result.stdout


def test_no_doubled_prefix_in_any_error(tmp_path: Path) -> None:
    results = [cnm("plan", "-f", str(CASE / "manifests"), "--observed", str(tmp_path / "x")),
               cnm("apply", "a.json", "-f", "b"), cnm("apply", "--yes")]
    for result in results:
        assert result.returncode == 1
        assert not result.stderr.startswith("cnm: cnm"), result.stderr

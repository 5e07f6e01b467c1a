"""`cnm completion bash|zsh|fish`: the script argcomplete writes, loaded by the real shell,
completes cnm's commands, flags and flag values from the parser itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a `cnm` that is this checkout's."""
    wrapper = tmp_path / "bin" / "cnm"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m reconciler "$@"\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{wrapper.parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
            "HOME": str(tmp_path), "TERM": "dumb"}


def _script(shell: str) -> str:
    result = subprocess.run([sys.executable, "-m", "reconciler", "completion", shell],
                            capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and result.stderr == ""
    return result.stdout


def _need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.fail(f"{shell} is needed (tools/install-peers installs it)")
    return path


def test_bash_completes_commands_flags_and_values(tmp_path: Path,
                                                  shell_env: dict[str, str]) -> None:
    script = tmp_path / "cnm.bash"
    script.write_text(_script("bash"))

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        program = (f"source {script}\n"
                   f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
                   f"COMP_CWORD={len(words) - 1}\nCOMP_LINE={line!r}\nCOMP_POINT={len(line)}\n"
                   "_python_argcomplete cnm\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
        result = subprocess.run([_need("bash"), "-c", program], capture_output=True, text=True,
                                env=shell_env, cwd=tmp_path, timeout=60)
        assert result.returncode == 0, result.stderr
        return [word.strip() for word in result.stdout.splitlines() if word.strip()]

    assert complete("cnm pl") == ["plan"]
    assert "completion" in complete("cnm ")
    assert complete("cnm plan --det") == ["--detailed-exitcode"]
    assert complete("cnm plan -o ") == ["text", "json", "markdown"]
    assert complete("cnm completion ") == ["bash", "zsh", "fish"]


def test_fish_completes_commands_and_flags(tmp_path: Path, shell_env: dict[str, str]) -> None:
    script = tmp_path / "cnm.fish"
    script.write_text(_script("fish"))

    def complete(line: str) -> list[str]:
        result = subprocess.run([_need("fish"), "--no-config", "-c",
                                 f"source {script}; complete -C {line!r}"],
                                capture_output=True, text=True, env=shell_env, cwd=tmp_path,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        return [word.split("\t")[0].strip() for word in result.stdout.splitlines()]

    assert complete("cnm pl") == ["plan"]
    assert complete("cnm apply --dry") == ["--dry-run"]
    assert sorted(complete("cnm get -o ")) == ["json", "mermaid", "text", "yaml"]  # fish sorts


def test_zsh_loads_the_script_and_cnm_answers_it(tmp_path: Path,
                                                 shell_env: dict[str, str]) -> None:
    """zsh's completion widget needs a terminal; the script is loaded for real into zsh's
    completion system, and cnm answers the request the widget makes (the same variables)."""
    script = tmp_path / "_cnm"
    script.write_text(_script("zsh"))
    loaded = subprocess.run(
        [_need("zsh"), "-f", "-c",
         f"autoload -U compinit && compinit -u -d {tmp_path}/zcompdump && source {script} "
         "&& print -r -- $_comps[cnm]"],
        capture_output=True, text=True, env=shell_env, cwd=tmp_path, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "_python_argcomplete"
    answer = tmp_path / "answer"
    request = {**shell_env, "COMP_LINE": "cnm val", "COMP_POINT": "7", "_ARGCOMPLETE": "1",
               "_ARGCOMPLETE_SHELL": "zsh", "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
               "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)}
    result = subprocess.run(["cnm"], env=request, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert answer.read_text().split(":")[0] == "validate"

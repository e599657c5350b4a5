"""Completion scripts are generated from the Typer app; the committed files must be current."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ctvl_cli.cli.completions import render_all
from tests.conftest import REPO

COMPLETIONS = REPO / "completions"


def test_committed_completions_are_current():
    stale = [
        name
        for name, text in render_all().items()
        if not (COMPLETIONS / name).exists() or (COMPLETIONS / name).read_text() != text
    ]
    assert not stale, f"stale completion scripts {stale}: run `make completions`"


def _bash_complete(words: list[str]) -> list[str]:
    script = (
        f"source {COMPLETIONS / 'ctvl.bash'}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
        f"COMP_CWORD={len(words) - 1}; _ctvl; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    return [w for w in out.splitlines() if w]


def test_bash_completes_subcommands_options_and_values():
    assert _bash_complete(["ctvl", "emb"]) == ["embed"]
    assert set(_bash_complete(["ctvl", "models", ""])) >= {"list", "info", "pull"}
    assert _bash_complete(["ctvl", "models", "list", "--format", "js"]) == ["json", "jsonl"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed on this machine")
def test_zsh_script_parses():
    subprocess.run(["zsh", "-n", str(COMPLETIONS / "_ctvl")], check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed on this machine")
def test_fish_completes_subcommands():
    out = subprocess.run(
        ["fish", "-c", f"source {COMPLETIONS / 'ctvl.fish'}; complete -C 'ctvl mod'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split("\t")[0].strip() == "models"

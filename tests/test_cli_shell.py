"""The CLI shell: help, version, exit codes, stdout/stderr separation, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from ctvl_cli.cli.app import app
from ctvl_cli.cli.common import handle_errors
from ctvl_cli.errors import InputError, PartialFailure

SUBCOMMANDS = [
    "embed",
    "zeroshot",
    "retrieve",
    "segment-organs",
    "generate-report",
    "finetune",
    "models",
    "cache",
]


def test_help_lists_every_subcommand(runner):
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in r.stdout


def test_version(runner):
    from ctvl_cli import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0
    assert r.stdout.strip() == f"ctvl {__version__}"


def test_unknown_option_is_usage_error(runner):
    r = runner.invoke(app, ["models", "list", "--no-such-option"])
    assert r.exit_code == 2


def _run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv", [["--help"], ["models", "list"], ["models", "list", "--format", "json"]])
def test_startup_imports_no_heavy_libraries(argv):
    code = (
        "import sys\n"
        f"sys.argv = ['ctvl', *{argv!r}]\n"
        "from ctvl_cli.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = [m for m in ('torch', 'h5py', 'faiss', 'transformers', 'SimpleITK', 'nibabel') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    p = _run_py(code)
    assert "HEAVY=\n" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_console_script_help_runs():
    p = subprocess.run(
        [sys.executable, "-m", "ctvl_cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and "embed" in p.stdout


# --- error handling contract, on a throwaway app using the shared wrapper ---------------------------------


def _demo_app() -> typer.Typer:
    demo = typer.Typer()

    @demo.command()
    @handle_errors
    def run(kind: str) -> None:
        if kind == "input":
            raise InputError("not a 3-D volume", path="scan.nii.gz", hint="pass a CT volume")
        if kind == "partial":
            raise PartialFailure("2 of 5 inputs failed", failures=[("a", "x"), ("b", "y")])
        if kind == "bug":
            raise ZeroDivisionError("boom")
        if kind == "interrupt":
            raise KeyboardInterrupt
        sys.stdout.write(json.dumps({"ok": True}) + "\n")

    @demo.command()
    def other() -> None:
        pass

    return demo


def test_input_error_is_one_line_exit_2(runner):
    r = runner.invoke(_demo_app(), ["run", "input"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.strip() == "ctvl: error: scan.nii.gz: not a 3-D volume (hint: pass a CT volume)"


def test_partial_failure_exit_1(runner):
    r = runner.invoke(_demo_app(), ["run", "partial"])
    assert r.exit_code == 1 and "2 of 5 inputs failed" in r.stderr


def test_internal_error_no_traceback_unless_debug(runner, monkeypatch):
    r = runner.invoke(_demo_app(), ["run", "bug"])
    assert r.exit_code == 1
    assert (
        "Traceback" not in r.stderr and "ZeroDivisionError: boom" in r.stderr and "CTVL_DEBUG=1" in r.stderr
    )
    monkeypatch.setenv("CTVL_DEBUG", "1")
    r = runner.invoke(_demo_app(), ["run", "bug"])
    assert isinstance(r.exception, ZeroDivisionError)


def test_interrupt_exit_130(runner):
    r = runner.invoke(_demo_app(), ["run", "interrupt"])
    assert r.exit_code == 130


def test_success_writes_data_to_stdout_only(runner):
    r = runner.invoke(_demo_app(), ["run", "ok"])
    assert r.exit_code == 0 and json.loads(r.stdout) == {"ok": True} and r.stderr == ""

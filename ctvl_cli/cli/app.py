"""The root ``ctvl`` Typer application. Importing this module must not import torch."""

from __future__ import annotations

import sys

import typer

from ctvl_cli import __version__
from ctvl_cli.errors import EXIT_INTERRUPTED

app = typer.Typer(
    name="ctvl",
    help="Command-line toolkit for 3D CT vision-language models.\n\n"
    "Data goes to stdout, messages and progress to stderr. Exit codes: 0 ok, 1 runtime or partial "
    "failure, 2 usage/input error, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ctvl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Show the version and exit."
    ),
) -> None:
    """Command-line toolkit for 3D CT vision-language models."""


def _register() -> None:
    from ctvl_cli.cli.commands import (
        cache,
        embed,
        finetune,
        models,
        phantom,
        report,
        retrieve,
        segment,
        zeroshot,
    )

    embed.register(app)
    phantom.register(app)
    zeroshot.register(app)
    retrieve.register(app)
    segment.register(app)
    report.register(app)
    finetune.register(app)
    app.add_typer(models.app, name="models", help="List, inspect and download registered models.")
    app.add_typer(cache.app, name="cache", help="Inspect, verify and merge HDF5 embedding caches.")


_register()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("ctvl: error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)

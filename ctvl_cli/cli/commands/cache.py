"""`ctvl cache` (placeholder until the cache lands)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("info")
def info_cmd() -> None:
    """Summarise a cache file."""
    raise typer.Exit(2)

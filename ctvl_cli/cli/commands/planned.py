"""Subcommands that exist in the CLI surface but are not built yet. They say so and exit 2."""

from __future__ import annotations

import typer

from ctvl_cli import __version__
from ctvl_cli.cli import output
from ctvl_cli.errors import EXIT_USAGE

PLANNED: dict[str, tuple[str, str]] = {
    "zeroshot": ("Zero-shot abnormality probabilities from label prompts.", "issue #4"),
    "retrieve": ("Image-to-image and report-to-image search, plus retrieval metrics.", "issue #4"),
    "segment-organs": ("Organ masks (lungs, heart, aorta, airways...) from chest CT.", "issue #6"),
    "finetune": ("Contrastive fine-tuning and linear probes.", "issue #3"),
}


def register_planned(app: typer.Typer, names: list[str] | None = None) -> None:
    for name in names or list(PLANNED):
        summary, where = PLANNED[name]
        app.command(
            name,
            help=f"[not built yet] {summary}",
            context_settings={
                "allow_extra_args": True,
                "ignore_unknown_options": True,
                "help_option_names": [],
            },
        )(_make_planned(name, where))


def _make_planned(name: str, where: str):
    def _cmd(ctx: typer.Context) -> None:
        output.error(
            f"`ctvl {name}` is not available in ctvl {__version__} yet (planned, {where}); nothing was run"
        )
        raise typer.Exit(EXIT_USAGE)

    return _cmd

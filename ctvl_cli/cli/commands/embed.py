"""`ctvl embed` (placeholder until the embed pipeline lands)."""

from __future__ import annotations

import typer

from ctvl_cli.cli.commands.planned import PLANNED, register_planned


def register(app: typer.Typer) -> None:
    PLANNED.setdefault("embed", ("Volumes and report texts to embeddings, cached in HDF5.", "issue #2"))
    register_planned(app, ["embed"])

"""`ctvl embed`: volumes and report texts to embeddings in the HDF5 cache."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.common import (
    DeviceOpt,
    FormatOpt,
    ModelOpt,
    exit_with_failures,
    handle_errors,
    progress_or_interrupt,
)
from ctvl_cli.cli.output import Format

EXAMPLES = """\b
Examples:
  ctvl embed scans/ --model ctvl-tiny-test --cache emb.h5
  ctvl embed 'data/**/*.nii.gz' @more.txt --reports reports.csv --cache emb.h5 --workers 2
  ctvl embed scans/ --cache shard3.h5 --shard 3/8   # array job; join with `ctvl cache merge`
  ctvl embed scans/ --cache emb.h5 --regions auto     # plus one embedding per (scan, organ)
"""


def register(app: typer.Typer) -> None:
    app.command("embed", epilog=EXAMPLES)(embed_cmd)


@handle_errors
def embed_cmd(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Volumes: files, directories (recursive), globs, @list.txt. "
            "A DICOM series folder is one volume."
        ),
    ] = None,
    cache: Annotated[
        Path, typer.Option("--cache", "-c", help="HDF5 embedding cache (created if missing).")
    ] = Path("embeddings.h5"),
    model: ModelOpt = None,
    reports: Annotated[
        Path | None,
        typer.Option(
            "--reports",
            help="CSV of report texts to embed: columns id,text "
            "(or CT-RATE's VolumeName,Findings_EN,Impressions_EN).",
        ),
    ] = None,
    weights: Annotated[
        str | None, typer.Option("--weights", help="Explicit weights file for the model.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Volumes per forward pass.")
    ] = 4,
    workers: Annotated[
        int, typer.Option("--workers", "-j", min=0, help="Parallel decode/preprocess processes.")
    ] = 0,
    device: DeviceOpt = "auto",
    shard: Annotated[
        str | None, typer.Option("--shard", help="i/n: embed only shard i of n (0 <= i < n).")
    ] = None,
    regions: Annotated[
        str | None,
        typer.Option(
            "--regions",
            help="Also store one embedding per (scan, organ): auto (segment now) or MASK_DIR (the -o folder of "
            "`ctvl segment-organs`). Features are pooled inside each organ on the model's feature grid.",
        ),
    ] = None,
    fmt: FormatOpt = Format.human,
) -> None:
    """Embed CT volumes and report texts; skips what is already in the cache.

    A bad file is recorded and skipped; the run finishes the rest and exits 1 with a failure table.
    Ctrl-C keeps everything computed so far (exit 130); rerun the same command to complete the rest.
    """
    from ctvl_cli.api.embed import embed

    kept = f"interrupted; finished embeddings are kept in {cache} (rerun to complete the rest)"
    with progress_or_interrupt("embedding", kept) as bar:
        res = embed(
            inputs=inputs or [],
            reports=reports,
            model=model,
            cache=cache,
            weights=weights,
            batch_size=batch_size,
            workers=workers,
            device=device,
            shard=shard,
            regions=regions,
            command_line=shlex.join(["ctvl", "embed", *sys.argv[2:]]),
            on_start=lambda n: bar.update(total=n),
            on_progress=bar.advance,
        )
    rows = [
        {
            "name": it.name,
            "kind": it.kind,
            "status": it.status,
            "id": it.id,
            "source": it.source,
            "error": it.error,
        }
        for it in res.items
    ]
    output.write_table(rows, fmt, columns=["name", "kind", "status", "id", "source", "error"])
    for w in res.warnings:
        output.warn(w)
    output.info(
        f"{res.model}: {res.count('embedded')} embedded, {res.count('cached')} already cached, "
        f"{res.count('failed')} failed in {res.elapsed_s:.1f} s -> {res.cache}"
    )
    if res.failures:
        exit_with_failures(f"{len(res.failures)} of {len(res.items)} inputs failed:", res.failures)

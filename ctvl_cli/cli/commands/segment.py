"""`ctvl segment-organs`: organ masks, label maps, volumes (mL) and QC previews of CT scans."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.common import FormatOpt, exit_with_failures, handle_errors, progress_or_interrupt
from ctvl_cli.cli.output import Format

EXAMPLES = """\b
Examples:
  ctvl segment-organs scan.nii.gz -o masks/
  ctvl segment-organs scans/ -o masks/ --organs lung,trachea --split --preview --format csv > volumes.csv
  ctvl segment-organs scans/ -o masks/ --backend totalsegmentator --fast   # needs TotalSegmentator + weights
"""


def register(app: typer.Typer) -> None:
    app.command("segment-organs", epilog=EXAMPLES)(segment_cmd)


@handle_errors
def segment_cmd(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Volumes: files, directories (recursive), globs, @list.txt. A DICOM folder is one volume."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).")],
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="auto (TotalSegmentator when it and its weights are installed, else builtin) | builtin | "
            "totalsegmentator.",
        ),
    ] = "auto",
    organs: Annotated[
        str | None,
        typer.Option(
            "--organs",
            help="Comma-separated organs or groups (lung = lung_left + lung_right). Default: all the backend "
            "segments. Names: lung_left, lung_right, trachea, skeleton, mediastinum, heart, aorta, esophagus, "
            "body; groups lung, airways.",
        ),
    ] = None,
    split: Annotated[bool, typer.Option("--split", help="Also write one NIfTI mask per organ.")] = False,
    preview: Annotated[
        bool, typer.Option("--preview", help="Write a PNG with axial, coronal and sagittal overlays.")
    ] = False,
    fast: Annotated[
        bool, typer.Option("--fast", help="TotalSegmentator's 3 mm model (totalsegmentator backend only).")
    ] = False,
    fmt: FormatOpt = Format.human,
) -> None:
    """Organ masks of CT scans: per scan a multilabel NIfTI on the input grid (<scan>_organs.nii.gz), its label
    map (<scan>_labels.json) and a table of organ volumes in mL on stdout. Organs outside the field of view stay
    empty with a warning; a bad file is recorded and the rest is segmented (exit 1)."""
    from ctvl_cli.api.segment import segment_organs

    with progress_or_interrupt("segmenting", f"interrupted; finished scans are in {out}") as bar:
        res = segment_organs(
            inputs=inputs,
            out=out,
            backend=backend,
            organs=organs,
            split=split,
            preview=preview,
            fast=fast,
            on_start=lambda n: bar.update(total=n),
            on_progress=bar.advance,
        )
    for note in res.notes:
        output.warn(note)
    rows = []
    for s in res.scans:
        for w in s.warnings:
            output.warn(f"{s.name}: {w}")
        if s.status == "failed":
            rows.append({"scan": s.name, "status": "failed", "backend": s.backend, "error": s.error})
            continue
        for organ, (n, ml) in s.organs.items():
            rows.append(
                {
                    "scan": s.name,
                    "organ": organ,
                    "volume_ml": round(ml, 2),
                    "voxels": n,
                    "status": "found" if n else "empty",
                    "backend": s.backend,
                }
            )
    cols = ["scan", "organ", "volume_ml", "voxels", "status", "backend", "error"]
    output.write_table(rows, fmt, columns=cols)
    ok = [s for s in res.scans if s.status == "ok"]
    secs = sum(s.seconds for s in ok) / max(len(ok), 1)
    output.info(
        f"{res.backend}: {len(ok)} scans segmented ({secs:.1f} s per scan), {len(res.failures)} failed -> {res.out}"
    )
    if res.failures:
        exit_with_failures(f"{len(res.failures)} of {len(res.scans)} inputs failed:", res.failures)

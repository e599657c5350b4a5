"""`ctvl phantom`: write procedural chest-CT phantoms with known findings (NIfTI + CT-RATE-style CSVs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.common import FormatOpt, handle_errors
from ctvl_cli.cli.output import Format

EXAMPLES = """\b
Examples:
  ctvl phantom phantoms/ -n 20 --seed 0
  ctvl phantom train/ -n 3000 --seed 1 --workers 2          # working resolution, CT-RATE-like finding rates
  ctvl phantom demo/ -n 2 --resolution full --findings "Lung nodule,Pleural effusion"
  ctvl phantom shard3/ -n 500 --start 1500 --seed 1         # case i depends only on (seed, i)
  ctvl phantom train/ -n 3000 --seed 1 --masks              # + masks/<scan>: where each finding is
"""


def register(app: typer.Typer) -> None:
    app.command("phantom", epilog=EXAMPLES)(phantom_cmd)


@handle_errors
def phantom_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Output folder (created if missing).")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="Number of scans to write.")] = 10,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Series seed.")] = 0,
    findings: Annotated[
        str | None,
        typer.Option(
            "--findings",
            help='Force exactly these CT-RATE findings in every scan, comma-separated (e.g. "Lung nodule,'
            'Pleural effusion"); "none" for normal scans. Default: random, at CT-RATE prevalences.',
        ),
    ] = None,
    finding_rate: Annotated[
        float | None,
        typer.Option(
            "--finding-rate", min=0.0, max=1.0, help="Probability of each finding (instead of CT-RATE's)."
        ),
    ] = None,
    resolution: Annotated[
        str,
        typer.Option(
            "--resolution",
            "-r",
            help="working (128x128, ~3 mm, fast) | full (512x512, 0.6-0.9 mm, 1-5 mm slices).",
        ),
    ] = "working",
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Parallel processes.")] = 0,
    start: Annotated[int, typer.Option("--start", min=0, help="Index of the first case (for sharding).")] = 0,
    masks: Annotated[
        bool,
        typer.Option(
            "--masks",
            help="Also write masks/<scan>: each finding's voxels (value k = k-th labels.csv column), "
            "for `finetune clip --masks`.",
        ),
    ] = False,
    fmt: FormatOpt = Format.human,
) -> None:
    """Write N phantom chest CTs, reports.csv, labels.csv (CT-RATE's 18 columns) and pairs.csv."""
    from ctvl_cli.phantom import finding_names, write_phantoms

    forced: list[str] | None = None
    if findings is not None:
        parts = [p.strip() for p in findings.split(",") if p.strip()]
        forced = [] if [p.lower() for p in parts] in ([], ["none"]) else parts
        by_lower = {f.lower(): f for f in finding_names()}
        forced = [by_lower.get(p.lower(), p) for p in forced]

    with output.progress(n, "phantoms") as bar:
        summary = write_phantoms(
            out_dir, n=n, seed=seed, findings=forced, finding_rate=finding_rate, resolution=resolution,
            workers=workers, start=start, masks=masks, on_case=lambda _row: bar.advance(),
        )  # fmt: skip
    rows = [
        {
            "name": c["name"],
            "shape": c["shape"],
            "spacing": c["spacing"],
            "contrast": c["contrast"],
            "findings": "; ".join(k for k, v in c["labels"].items() if v) or "none",
        }
        for c in summary["cases"]
    ]
    output.write_table(rows, fmt, columns=["name", "shape", "spacing", "contrast", "findings"])
    output.info(
        f"wrote {summary['n']} scans{' + masks' if masks else ''} + reports.csv, labels.csv, pairs.csv to {summary['out_dir']} "
        f"in {summary['seconds']} s ({summary['scans_per_s']} scans/s)"
    )

"""`ctvl zeroshot [score] INPUTS... --labels FILE` and `ctvl zeroshot eval --pred P --truth T`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

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
from ctvl_cli.errors import InputError, UsageError


class DefaultScoreGroup(TyperGroup):
    """``ctvl zeroshot X...`` means ``ctvl zeroshot score X...`` unless X is a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["score", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultScoreGroup,
    help="Zero-shot abnormality probabilities from label prompts (`score`, the default) and their evaluation "
    "(`eval`). `ctvl zeroshot SCANS... --labels labels.txt` is `ctvl zeroshot score ...`.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

SCORE_EXAMPLES = """\b
Examples:
  ctvl zeroshot scan.nii.gz --labels labels.txt
  ctvl zeroshot scans/ --labels labels.yaml --cache emb.h5 --format csv > pred.csv
  ctvl zeroshot --cache emb.h5 --labels labels.txt --templates ensemble      # every cached scan
  ctvl zeroshot scans/ --labels labels.txt --threshold thresholds.json       # adds 0/1 calls
  ctvl zeroshot scans/ --head probe.safetensors --cache emb.h5               # linear probe instead of prompts
  ctvl zeroshot scans/ --labels labels.txt --cache emb.h5 --region lung       # per-organ embeddings
"""


def _thresholds(spec: str | None, findings: list[str]) -> dict[str, float] | None:
    if spec is None:
        return None
    try:
        t = float(spec)
        return dict.fromkeys(findings, t)
    except ValueError:
        pass
    p = Path(spec)
    if not p.is_file():
        raise UsageError(
            f"--threshold {spec!r} is neither a number nor a file", hint="0.5, or thresholds.json"
        )
    try:
        d = json.loads(p.read_text())
        d = d.get("thresholds", d)
        out = {f: float(d[f]) for f in findings}
    except KeyError as e:
        raise InputError(f"no threshold for finding {e.args[0]!r}", path=p) from None
    except (ValueError, TypeError, AttributeError):
        raise InputError(
            "expected JSON {finding: threshold}", path=p, hint="as written by `zeroshot eval`"
        ) from None
    return out


@app.command("score", epilog=SCORE_EXAMPLES)
@handle_errors
def score_cmd(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Volumes: files, directories, globs, @list.txt (none: all cached)."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels", "-l", help="Findings: text (one per line) or YAML/JSON with prompts/synonyms."
        ),
    ] = None,
    model: ModelOpt = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", "-c", help="HDF5 embedding cache to use and fill (default: temporary)."),
    ] = None,
    templates: Annotated[
        str,
        typer.Option(
            "--templates", "-t", help="Prompt set: ctclip (default), there-is, compatible, short, ensemble."
        ),
    ] = "ctclip",
    head: Annotated[
        Path | None,
        typer.Option("--head", help="Linear-probe head from `ctvl finetune probe` (instead of prompts)."),
    ] = None,
    threshold: Annotated[
        str | None,
        typer.Option(
            "--threshold", help="Add 0/1 calls: one number, or thresholds.json from `zeroshot eval`."
        ),
    ] = None,
    weights: Annotated[
        str | None, typer.Option("--weights", help="Explicit weights file for the model.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Volumes per forward pass.")
    ] = 4,
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Parallel decode processes.")] = 0,
    device: DeviceOpt = "auto",
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Score the per-organ embeddings of this organ (e.g. lung, mediastinum, heart) instead of whole "
            "scans; inputs get them with --regions masks.",
        ),
    ] = None,
    regions: Annotated[
        str, typer.Option("--regions", help="With --region and inputs: auto (segment now) or MASK_DIR.")
    ] = "auto",
    fmt: FormatOpt = Format.human,
) -> None:
    """P(finding present) per scan: CT-CLIP's protocol ("{X} is present." vs "{X} is not present.", softmax
    over the pair of temperature-scaled logits). Ensembles average prompt *embeddings*, not probabilities."""
    from ctvl_cli.api.zeroshot import zeroshot

    kept = "interrupted" + (f"; finished embeddings are kept in {cache}" if cache else "")
    with progress_or_interrupt("embedding", kept) as bar:
        res = zeroshot(
            inputs=inputs or [],
            labels=labels,
            model=model,
            cache=cache,
            templates=templates,
            head=head,
            weights=weights,
            batch_size=batch_size,
            workers=workers,
            device=device,
            region=region,
            regions=regions,
            on_start=lambda n: bar.update(total=n),
            on_progress=bar.advance,
        )
    for w in res.warnings:
        output.warn(w)
    thr = _thresholds(threshold, res.findings)
    rows = []
    for i, name in enumerate(res.names):
        row = {"scan": name}
        for k, f in enumerate(res.findings):
            row[f] = round(float(res.probs[i, k]), 6)
        if thr is not None:
            for k, f in enumerate(res.findings):
                row[f"{f} (call)"] = int(res.probs[i, k] >= thr[f])
        row["source"] = res.sources[i]
        rows.append(row)
    cols = ["scan", *res.findings, *([f"{f} (call)" for f in res.findings] if thr else []), "source"]
    output.write_table(rows, fmt, columns=cols)
    what = f"{res.method}, region {region}" if region else res.method
    output.info(f"{res.model}: {len(rows)} scans x {len(res.findings)} findings ({what})")
    if res.failures:
        exit_with_failures(f"{len(res.failures)} input(s) failed (their rows are missing):", res.failures)


@app.command("eval")
@handle_errors
def eval_cmd(
    pred: Annotated[Path, typer.Option("--pred", help="Predictions CSV from `ctvl zeroshot -f csv`.")],
    truth: Annotated[
        Path, typer.Option("--truth", help="Labels CSV: scan id column, then 0/1 finding columns.")
    ],
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for 95% CIs.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    thresholds_out: Annotated[
        Path | None,
        typer.Option("--thresholds-out", help="Write the chosen thresholds (JSON) for --threshold."),
    ] = None,
    fmt: FormatOpt = Format.human,
) -> None:
    """Per-finding AUROC, F1, accuracy, precision, recall at CT-CLIP's threshold (ROC point closest to (0,1)),
    macro means and bootstrap 95% CIs. Scans missing from either file are reported, never silently dropped."""
    from ctvl_cli.zeroshot.evaluate import evaluate_files

    rep = evaluate_files(pred, truth, n_boot=bootstrap, seed=seed)
    if rep.missing:
        output.warn(
            f"{len(rep.missing)} labelled scan(s) have no prediction, e.g. {', '.join(rep.missing[:3])}"
        )
    if rep.extra:
        output.warn(f"{len(rep.extra)} predicted scan(s) have no label, e.g. {', '.join(rep.extra[:3])}")
    if rep.skipped_findings:
        output.warn(f"findings only in one file (not evaluated): {', '.join(rep.skipped_findings)}")
    output.write_table(rep.rows, fmt)
    output.info(
        f"evaluated {rep.n} scans: macro AUROC {rep.macro['auroc']:.4f}, macro F1 {rep.macro['f1']:.4f}"
    )
    if thresholds_out:
        thresholds_out.write_text(json.dumps({"thresholds": rep.thresholds}, indent=2) + "\n")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="zeroshot")

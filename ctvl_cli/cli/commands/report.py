"""`ctvl generate-report [generate] SCANS...` and `ctvl generate-report eval --pred P --truth T`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from ctvl_cli.cli import output
from ctvl_cli.cli.common import DeviceOpt, FormatOpt, handle_errors, progress_or_interrupt
from ctvl_cli.cli.output import Format
from ctvl_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED


class DefaultGenerateGroup(TyperGroup):
    """``ctvl generate-report X...`` means ``ctvl generate-report generate X...`` unless X is a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["generate", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultGenerateGroup,
    help="Radiology reports from CT volumes (`generate`, the default), their evaluation (`eval`) and the "
    "18 CT-RATE findings read from report text (`label`). "
    "`ctvl generate-report SCANS...` is `ctvl generate-report generate SCANS...`.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

GEN_EXAMPLES = """\b
Examples:
  ctvl generate-report scan.nii.gz                                 # embedded report model (offline)
  ctvl generate-report scans/ --format csv > pred.csv
  ctvl generate-report scans/ --model runs/rep1 --decoding beam --beams 4
  ctvl generate-report scans/ --method retrieval --index idx/      # index built with --reports
  ctvl generate-report scans/ --method template --threshold thr.json
  ctvl generate-report eval --pred pred.csv --truth reports.csv
"""


@app.command("generate", epilog=GEN_EXAMPLES)
@handle_errors
def generate_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Volumes: files, directories, globs, @list.txt.")],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="auto (lm with the embedded report model when packaged, else template) | lm | retrieval | "
            "template.",
        ),
    ] = "auto",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="lm: report model (a `finetune report` run directory; default ctvl-phantom-report). "
            "template: the CLIP model for zero-shot findings (default ctvl-phantom). retrieval: the index's model.",
        ),
    ] = None,
    index: Annotated[
        Path | None, typer.Option("--index", "-i", help="retrieval: index from `retrieve build --reports`.")
    ] = None,
    exclude_self: Annotated[
        bool, typer.Option("--exclude-self", help="retrieval: never return a scan's own indexed report.")
    ] = False,
    threshold: Annotated[
        str,
        typer.Option(
            "--threshold",
            help="template: P(present) cut-off, one number or thresholds.json (`zeroshot eval`).",
        ),
    ] = "0.5",
    cache: Annotated[
        Path | None,
        typer.Option("--cache", "-c", help="template/retrieval: embedding cache to use and fill."),
    ] = None,
    decoding: Annotated[str, typer.Option("--decoding", help="lm: greedy | beam | sample.")] = "greedy",
    beams: Annotated[int, typer.Option("--beams", min=1, help="lm: beam width (--decoding beam).")] = 4,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.01, help="lm: sampling temperature.")
    ] = 1.0,
    top_p: Annotated[
        float, typer.Option("--top-p", min=0.0, max=1.0, help="lm: nucleus sampling mass.")
    ] = 0.9,
    repetition_penalty: Annotated[
        float, typer.Option("--repetition-penalty", min=1.0, help="lm: >1 discourages repeats.")
    ] = 1.0,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="lm: report length cap.")
    ] = 320,
    seed: Annotated[int, typer.Option("--seed", help="lm: random seed of sampling.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Scans per forward pass.")] = 8,
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Parallel decode processes.")] = 0,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = Format.human,
) -> None:
    """One report per scan (columns id, method, model, report, source, note). A scan that cannot be read is
    recorded and skipped; the others are written; the exit code is then 1."""
    from ctvl_cli.api.generate import generate_reports

    thr: dict[str, float] | float
    try:
        thr = float(threshold)
    except ValueError:
        from ctvl_cli.cli.commands.zeroshot import _thresholds
        from ctvl_cli.reports.labeler import FINDINGS

        thr = _thresholds(threshold, list(FINDINGS)) or 0.5
    kept = "interrupted; no report was written" + (
        f" (finished embeddings are kept in {cache})" if cache else ""
    )
    with progress_or_interrupt("generating", kept) as bar:
        res = generate_reports(
            inputs=inputs,
            method=method,
            model=model,
            index=index,
            threshold=thr,
            exclude_self=exclude_self,
            cache=cache,
            decoding=decoding,
            beams=beams,
            temperature=temperature,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
            workers=workers,
            device=device,
            on_start=lambda n: bar.update(total=n),
            on_progress=bar.advance,
        )
    rows = [r.__dict__ for r in res.reports]
    output.write_table(rows, fmt, columns=["id", "method", "model", "report", "source", "note"])
    output.info(f"{len(rows)} report(s) by method {res.method} ({res.model})")
    if res.interrupted:
        output.error(f"interrupted: the {len(rows)} report(s) finished before Ctrl-C are written above")
        raise typer.Exit(EXIT_INTERRUPTED)
    if res.failures:
        import sys

        output.error(f"{len(res.failures)} scan(s) failed (no report for them):")
        for f in res.failures:
            sys.stderr.write(f"  {f.error if f.name in f.error else f'{f.name}: {f.error}'}\n")
        raise typer.Exit(EXIT_FAILURE)


@app.command("eval")
@handle_errors
def eval_cmd(
    pred: Annotated[
        Path, typer.Option("--pred", help="Generated reports: CSV from `generate-report -f csv`.")
    ],
    truth: Annotated[
        Path,
        typer.Option(
            "--truth", help="Reference reports CSV (id/VolumeName + text/report_text or Findings_EN...)."
        ),
    ],
    per_finding: Annotated[
        bool, typer.Option("--per-finding", help="Rows of clinical-efficacy P/R/F1 per finding too.")
    ] = False,
    fmt: FormatOpt = Format.human,
) -> None:
    """BLEU-1..4, ROUGE-L, METEOR (when NLTK's WordNet data is installed) and clinical efficacy: precision,
    recall and F1 of the 18 CT-RATE findings, extracted by the report labeler from both texts."""
    from ctvl_cli.api.generate import evaluate_files

    rep = evaluate_files(pred, truth)
    m = rep.metrics
    if rep.missing:
        output.warn(
            f"{len(rep.missing)} reference report(s) have no generated report, e.g. {', '.join(rep.missing[:3])}"
        )
    if rep.extra:
        output.warn(
            f"{len(rep.extra)} generated report(s) have no reference, e.g. {', '.join(rep.extra[:3])}"
        )
    if rep.empty:
        output.warn(f"{rep.empty} generated report(s) are empty")
    if m["meteor"] is None:
        output.warn(f"METEOR not computed: {m['meteor_note']}")
    macro = m["ce"]["macro"]
    rows = [{"metric": f"BLEU-{n}", "value": m[f"bleu_{n}"]} for n in range(1, 5)]
    rows += [{"metric": "ROUGE-L", "value": m["rouge_l"]}, {"metric": "METEOR", "value": m["meteor"]}]
    rows += [
        {"metric": "CE macro precision", "value": macro["precision"]},
        {"metric": "CE macro recall", "value": macro["recall"]},
        {"metric": "CE macro F1", "value": macro["f1"]},
        {"metric": "CE micro F1", "value": macro["micro_f1"]},
    ]
    if per_finding:
        for r in m["ce"]["rows"]:
            for k in ("precision", "recall", "f1"):
                rows.append({"metric": f"CE {r['finding']} {k}", "value": r[k]})
    for r in rows:
        r["reports"] = rep.n
        if isinstance(r["value"], float):
            r["value"] = round(r["value"], 4)
    output.write_table(rows, fmt, columns=["metric", "value", "reports"])
    output.info(f"evaluated {rep.n} report pairs: CE macro F1 {macro['f1']:.4f}, BLEU-4 {m['bleu_4']:.4f}")


@app.command("label")
@handle_errors
def label_cmd(
    reports: Annotated[
        Path,
        typer.Argument(
            help="Reports CSV (id/VolumeName + text/report_text or Findings_EN + Impressions_EN)."
        ),
    ],
    uncertain: Annotated[
        str | None,
        typer.Option(
            "--uncertain",
            help="positive | negative: how hedged mentions count for every finding (default: each "
            "finding's own policy, chosen on CT-RATE's training labels).",
        ),
    ] = None,
    evidence: Annotated[
        bool, typer.Option("--evidence", help="Add a column with the sentence behind each positive.")
    ] = False,
    fmt: FormatOpt = Format.csv,
) -> None:
    """The 18 CT-RATE findings of each report (negation- and uncertainty-aware rules): a labels table in
    CT-RATE's layout (VolumeName + 18 columns of 0/1), usable as `zeroshot eval --truth`."""
    from ctvl_cli.api.generate import label_file
    from ctvl_cli.reports.labeler import FINDINGS

    rows = label_file(reports, uncertain=uncertain)
    cols = ["VolumeName", *FINDINGS] + (["evidence"] if evidence else [])
    output.write_table(rows, fmt, columns=cols)
    pos = sum(sum(r[f] for f in FINDINGS) for r in rows)
    output.info(f"labelled {len(rows)} reports: {pos} positive findings")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="generate-report")

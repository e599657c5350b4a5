"""`ctvl retrieve build | query | eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.common import DeviceOpt, FormatOpt, ModelOpt, exit_with_failures, handle_errors
from ctvl_cli.cli.output import Format
from ctvl_cli.errors import UsageError

app = typer.Typer(
    help="Image-to-image and report-to-image search over FAISS indexes, plus CT-CLIP's retrieval metrics.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

BUILD_EXAMPLES = """\b
Examples:
  ctvl embed scans/ --cache emb.h5 && ctvl retrieve build --cache emb.h5 --index idx/
  ctvl retrieve build --cache emb.h5 --index idx/ --add          # index scans embedded since
  ctvl retrieve build --cache emb.h5 --index idx/ --reports reports.csv   # entries carry report texts
  ctvl retrieve build --cache emb.h5 --index idx/ --kind ivfpq --memory-budget 2 --overwrite
  ctvl retrieve build --cache emb.h5 --index heart-idx/ --region heart     # after embed --regions
"""

QUERY_EXAMPLES = """\b
Examples:
  ctvl retrieve query --index idx/ --image scan.nii.gz -k 5
  ctvl retrieve query --index idx/ --text "Bilateral pleural effusion." -k 10 --format json
  ctvl retrieve query --index idx/ --reports reports.csv -k 10 --format csv > hits.csv
"""


def _ks(spec: str | None) -> list[int] | None:
    if spec is None:
        return None
    try:
        ks = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"invalid K list {spec!r}", hint="e.g. 1,5,10,50") from None
    if not ks or min(ks) < 1:
        raise UsageError(f"invalid K list {spec!r}", hint="positive integers, e.g. 1,5,10,50")
    return ks


@app.command("build", epilog=BUILD_EXAMPLES)
@handle_errors
def build_cmd(
    cache: Annotated[Path, typer.Option("--cache", "-c", help="HDF5 cache with the image embeddings.")],
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory to write.")],
    model: ModelOpt = None,
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="auto (flat <=100k, else HNSW or IVF-PQ by memory) | flat | hnsw | ivf | ivfpq"
        ),
    ] = "auto",
    add: Annotated[
        bool, typer.Option("--add", help="Add the cache's new scans to an existing index.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing index.")] = False,
    gpu: Annotated[
        bool | None, typer.Option("--gpu/--no-gpu", help="FAISS on GPU (default: when available).")
    ] = None,
    memory_budget: Annotated[
        float, typer.Option("--memory-budget", help="GB the index may use (auto choice).")
    ] = 8.0,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Index the per-organ embeddings of this organ (from `ctvl embed --regions`) instead of whole "
            "scans; queries then use the same organ of the query scans.",
        ),
    ] = None,
    reports: Annotated[
        Path | None,
        typer.Option(
            "--reports",
            help="Reports CSV (ids = scan names): entries carry their report text (generate-report --method retrieval).",
        ),
    ] = None,
    fmt: FormatOpt = Format.human,
) -> None:
    """Build a FAISS index (cosine) over a cache's image embeddings, with a sidecar JSON of ids and sources."""
    from ctvl_cli.api.retrieve import build_index

    res = build_index(
        cache=cache,
        index=index,
        model=model,
        kind=kind,
        add=add,
        overwrite=overwrite,
        gpu="auto" if gpu is None else ("yes" if gpu else "no"),
        memory_budget_gb=memory_budget,
        region=region,
        reports=reports,
    )
    output.write_record(
        {
            "index": res.index,
            "factory": res.factory,
            "vectors": res.n_total,
            "added": res.n_added,
            "with_reports": res.n_reports,
            "params": res.params,
            "gpu": res.gpu,
            "seconds": round(res.seconds, 3),
        },
        fmt,
    )


@app.command("query", epilog=QUERY_EXAMPLES)
@handle_errors
def query_cmd(
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory from `retrieve build`.")],
    image: Annotated[list[str] | None, typer.Option("--image", help="Query scan(s) (repeatable).")] = None,
    text: Annotated[list[str] | None, typer.Option("--text", help="Query report text (repeatable).")] = None,
    reports: Annotated[Path | None, typer.Option("--reports", help="CSV of query reports (id,text).")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Results per query.")] = 10,
    exclude_self: Annotated[
        bool, typer.Option("--exclude-self", help="Drop a query scan's own entry from its results.")
    ] = False,
    model: ModelOpt = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Cache to reuse for query scan embeddings.")
    ] = None,
    device: DeviceOpt = "auto",
    regions: Annotated[
        str,
        typer.Option(
            "--regions", help="Region index: organ masks of the query scans, auto (segment now) or MASK_DIR."
        ),
    ] = "auto",
    fmt: FormatOpt = Format.human,
) -> None:
    """Ranked nearest scans for image queries (image->image) or report texts (report->image)."""
    from ctvl_cli.api.retrieve import query_index

    texts = [(f"text{i + 1}", t) for i, t in enumerate(text or [])]
    if reports is not None:
        from ctvl_cli.api.reports import read_reports

        texts += [(r.id, r.text) for r in read_reports(reports)]
    if not image and not texts:
        raise UsageError("no query", hint="--image SCAN, --text TEXT or --reports reports.csv")
    hits, failures = query_index(
        index=index,
        images=image,
        texts=texts,
        k=k,
        model=model,
        cache=cache,
        exclude_self=exclude_self,
        device=device,
        regions=regions,
    )
    rows = [
        {"query": h.query, "rank": h.rank, "scan": h.name, "score": round(h.score, 6), "source": h.source}
        for h in hits
    ]
    output.write_table(rows, fmt, columns=["query", "rank", "scan", "score", "source"])
    if failures:
        exit_with_failures(f"{len(failures)} query scan(s) failed:", failures)


@app.command("eval")
@handle_errors
def eval_cmd(
    cache: Annotated[
        Path, typer.Option("--cache", "-c", help="HDF5 cache with image (and report) embeddings.")
    ],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="labels.csv for image->image MAP@K.")
    ] = None,
    reports: Annotated[
        Path | None,
        typer.Option("--reports", help="Reports CSV (ids = scan names) for report->image Recall@K."),
    ] = None,
    model: ModelOpt = None,
    map_k: Annotated[
        str | None, typer.Option("--map-k", help="K values for MAP@K (default 1,5,10,50).")
    ] = None,
    recall_k: Annotated[
        str | None, typer.Option("--recall-k", help="K values for Recall@K (default 5,10,50,100).")
    ] = None,
    ctclip_compat: Annotated[
        bool,
        typer.Option(
            "--ctclip-compat",
            help="Reproduce CT-CLIP's script: self-match kept, running mean over K, stable ties.",
        ),
    ] = False,
    fmt: FormatOpt = Format.human,
) -> None:
    """CT-CLIP's image->image MAP@K (Jaccard relevance) and report->image Recall@K, exact search."""
    from ctvl_cli.api.retrieve import evaluate

    res = evaluate(
        cache=cache,
        labels=labels,
        reports=reports,
        model=model,
        map_ks=_ks(map_k),
        recall_ks=_ks(recall_k),
        ctclip_compat=ctclip_compat,
    )
    rows = [
        {"metric": f"MAP@{kk}", "value": round(v, 4), "queries": res["map_scans"]}
        for kk, v in res.get("map", {}).items()
    ]
    rows += [
        {"metric": f"R@{kk}", "value": round(v, 4), "queries": res["recall_queries"]}
        for kk, v in res.get("recall", {}).items()
    ]
    output.write_table(rows, fmt, columns=["metric", "value", "queries"])
    notes = []
    if res.get("unlabelled_scans"):
        notes.append(f"{res['unlabelled_scans']} cached scans have no label (left out of MAP)")
    if res.get("reports_without_scan"):
        notes.append(f"{res['reports_without_scan']} reports have no cached scan (left out of recall)")
    for n in notes:
        output.warn(n)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="retrieve")

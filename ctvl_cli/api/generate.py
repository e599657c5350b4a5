"""`ctvl generate-report`: a report per scan, by one of three methods.

* ``lm``: a report model (``finetune report`` run directory, or the embedded ``ctvl-phantom-report``): frozen
  image encoder -> projector -> causal LM, greedy / beam / sampling decoding.
* ``retrieval``: the report of the nearest neighbour in a ``ctvl retrieve build --reports`` index (image->image
  cosine similarity) — the known strong baseline.
* ``template``: a structured report from the zero-shot findings of a registry CLIP model (CT-CLIP's prompt
  protocol), written with the sentences of ``reports/template.yaml``.

``auto`` (the default) is ``lm`` with the embedded report model when it is packaged, else ``template``; the chosen
method is named on stderr and in every output record.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ctvl_cli.errors import InputError, UsageError

METHODS = ("auto", "lm", "retrieval", "template")


@dataclass
class Generated:
    id: str
    source: str
    method: str
    model: str
    report: str
    note: str = ""


@dataclass
class Failure:
    name: str
    error: str


@dataclass
class GenerateResult:
    method: str
    model: str
    reports: list[Generated] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C during generation: ``reports`` holds what was finished


def choose_method(method: str, model: str | None) -> str:
    from ctvl_cli.reports.model import available

    if method not in METHODS:
        raise UsageError(f"unknown --method {method!r}", hint=" | ".join(METHODS))
    if method != "auto":
        return method
    if model is not None:
        return "lm"  # --model names a report model; its errors are reported, not hidden by a fallback
    return "lm" if available() else "template"


def _name(p: str) -> str:
    from ctvl_cli.api.embed import _display_name

    return _display_name(p)


def generate_reports(
    *,
    inputs: Sequence[str],
    method: str = "auto",
    model: str | None = None,
    index: str | Path | None = None,
    threshold: dict[str, float] | float = 0.5,
    exclude_self: bool = False,
    cache: str | Path | None = None,
    decoding: str = "greedy",
    beams: int = 4,
    temperature: float = 1.0,
    top_p: float = 0.9,
    repetition_penalty: float = 1.0,
    max_new_tokens: int = 320,
    seed: int = 0,
    batch_size: int = 8,
    workers: int = 0,
    device: str = "auto",
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    if not inputs:
        raise UsageError(
            "no scans given", hint="ctvl generate-report SCAN... (files, folders, globs, @list.txt)"
        )
    method = choose_method(method, model)
    if method == "retrieval":
        return _retrieval(inputs, index, model, exclude_self, cache, device)
    if method == "template":
        return _template(inputs, model, threshold, cache, batch_size, workers, device, on_start, on_progress)
    return _lm(
        inputs,
        model,
        dict(
            max_new_tokens=max_new_tokens,
            decoding=decoding,
            beams=beams,
            temperature=temperature,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
        ),
        seed,
        batch_size,
        workers,
        device,
        on_start,
        on_progress,
    )


def _lm(inputs, model, gen_kw, seed, batch_size, workers, device, on_start, on_progress) -> GenerateResult:
    import torch

    from ctvl_cli.api.embed import _collate, _VolumeDataset, _worker_init
    from ctvl_cli.io.discover import discover_inputs
    from ctvl_cli.models.factory import resolve_device
    from ctvl_cli.reports import model as rm

    d = rm.resolve_dir(model)
    dev = resolve_device(device)
    net, tok, card, encoder, ecard = rm.load_dir(d, device=dev)
    paths = discover_inputs(inputs)
    res = GenerateResult(method="lm", model=card["name"])
    if on_start:
        on_start(len(paths))
    loader = torch.utils.data.DataLoader(
        _VolumeDataset(paths, ecard.preprocess, True),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None,
    )
    torch.manual_seed(seed)
    try:
        for batch in loader:
            ok = []
            for i, x, _meta, err in batch:
                if err is not None:
                    res.failures.append(Failure(paths[i], err))
                else:
                    ok.append((i, x))
            if ok:
                xs = torch.stack([x for _, x in ok]).to(dev)
                fm = rm.feature_tokens(encoder, xs)
                texts = rm.decode(tok, net.generate(fm, **gen_kw), net.ids)
                for (i, _), t in zip(ok, texts):
                    res.reports.append(Generated(_name(paths[i]), paths[i], "lm", card["name"], t))
            if on_progress:
                on_progress(len(batch))
    except KeyboardInterrupt:
        res.interrupted = True  # the finished reports are returned and written
    return res


def _template(inputs, model, threshold, cache, batch_size, workers, device, on_start, on_progress):
    from ctvl_cli.api.zeroshot import zeroshot
    from ctvl_cli.reports.labeler import FINDINGS
    from ctvl_cli.reports.template import write_template_report

    with tempfile.TemporaryDirectory(prefix="ctvl-tpl-") as tmp:
        labels = Path(tmp) / "findings.txt"
        labels.write_text("\n".join(FINDINGS) + "\n")
        zs = zeroshot(
            inputs=inputs,
            labels=labels,
            model=model,
            cache=cache,
            batch_size=batch_size,
            workers=workers,
            device=device,
            on_start=on_start,
            on_progress=on_progress,
        )
    thr = threshold if isinstance(threshold, dict) else dict.fromkeys(zs.findings, float(threshold))
    res = GenerateResult(method="template", model=zs.model)
    for i, name in enumerate(zs.names):
        present = [f for k, f in enumerate(zs.findings) if zs.probs[i, k] >= thr[f]]
        note = "positive: " + (", ".join(present) or "none")
        res.reports.append(
            Generated(name, zs.sources[i], "template", zs.model, write_template_report(present), note)
        )
    res.failures = [Failure(it.source or it.name, it.error or "failed") for it in zs.failures]
    return res


def _retrieval(inputs, index, model, exclude_self, cache, device) -> GenerateResult:
    from ctvl_cli.api.retrieve import query_index
    from ctvl_cli.retrieval import index as ix

    if index is None:
        raise UsageError(
            "--method retrieval needs --index",
            hint="ctvl retrieve build --cache emb.h5 --index idx/ --reports reports.csv",
        )
    idx, sc = ix.load(index)
    texts = dict(zip(sc.ids, sc.reports)) if sc.reports else {}
    if not any(texts.values()):
        raise InputError(
            "the index carries no report texts",
            path=index,
            hint=f"rebuild it with --reports: ctvl retrieve build --cache CACHE --index {index} --reports reports.csv --overwrite",
        )
    k = min(idx.ntotal, 32)
    hits, failures = query_index(
        index=index,
        images=list(inputs),
        k=k,
        model=model,
        cache=cache,
        exclude_self=exclude_self,
        device=device,
    )
    from ctvl_cli.io.discover import discover_inputs

    paths = {_name(p): p for p in discover_inputs(inputs)}
    res = GenerateResult(method="retrieval", model=sc.model_name)
    seen: set[str] = set()
    for h in hits:  # ranked per query; the first neighbour that has a report wins
        if h.query in seen or not texts.get(h.id):
            continue
        seen.add(h.query)
        note = f"nearest: {h.name} (cosine {h.score:.4f})"
        res.reports.append(
            Generated(h.query, paths.get(h.query, ""), "retrieval", sc.model_name, texts[h.id], note)
        )
    res.failures = [Failure(it.source or it.name, it.error or "failed") for it in failures]
    return res


# ------------------------------------------------------------------------------------------------ eval
@dataclass
class EvalReport:
    metrics: dict
    n: int
    missing: list[str]
    extra: list[str]
    empty: int


def evaluate_files(pred: str | Path, truth: str | Path) -> EvalReport:
    """Generated reports (``generate-report -f csv``: id, report) against reference reports (a reports CSV:
    id/VolumeName + text/report_text or Findings_EN + Impressions_EN), matched by scan name."""
    from ctvl_cli.api.reports import read_reports
    from ctvl_cli.reports.metrics import evaluate_texts
    from ctvl_cli.zeroshot.truth import scan_key

    def table(p):
        rows = read_reports(p)
        return {scan_key(r.id): r.text for r in rows}

    P, T = table(pred), table(truth)
    common = [k for k in T if k in P]
    if not common:
        raise InputError(
            "no generated report matches a reference report by scan name",
            path=pred,
            hint=f"ids of --pred must name the scans of --truth (e.g. {next(iter(T), '?')})",
        )
    empty = sum(1 for k in common if not P[k].strip())
    metrics = evaluate_texts([T[k] for k in common], [P[k] for k in common])
    return EvalReport(
        metrics=metrics,
        n=len(common),
        missing=[k for k in T if k not in P],
        extra=[k for k in P if k not in T],
        empty=empty,
    )


def label_file(reports: str | Path, *, uncertain: str | None = None) -> list[dict]:
    """The 18 CT-RATE findings of every report in a reports CSV, read by the report labeler: one record per
    report, ``{"VolumeName": id, <finding>: 0/1, ..., "evidence": "finding: sentence; ..."}`` in file order."""
    from ctvl_cli.api.reports import read_reports
    from ctvl_cli.reports.labeler import FINDINGS, explain

    out = []
    for r in read_reports(reports):
        why = explain(r.text, uncertain=uncertain)  # the positive findings, each with its deciding mentions
        ev = "; ".join(f"{f}: {ms[0].sentence.strip()}" for f, ms in why.items() if ms)
        out.append({"VolumeName": r.id, **{f: int(f in why) for f in FINDINGS}, "evidence": ev})
    return out

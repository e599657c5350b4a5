"""`ctvl retrieve build | query | eval`: FAISS indexes over cached image embeddings, image->image and
report->image search, and CT-CLIP's retrieval metrics."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctvl_cli.errors import InputError, UsageError


def _cache_model(cache: str | Path, model: str | None):
    """(model reference, key, model name) of the images to index: --model, else the cache's only model."""
    from ctvl_cli.cache import EmbeddingCache

    if not Path(cache).exists():
        raise InputError("cache not found", path=cache, hint="fill it with `ctvl embed SCANS --cache FILE`")
    if model is not None:
        from ctvl_cli.api.zeroshot import resolve_key

        card, _, key = resolve_key(model)
        return model, key, card.name
    with EmbeddingCache.open(cache, writable=False) as store:
        models = {k: v for k, v in store.models().items() if store.count(k)}
    if len(models) != 1:
        names = ", ".join(sorted(v.get("name", "?") for v in models.values())) or "none"
        raise UsageError(
            f"the cache holds embeddings of {len(models)} models ({names})", hint="choose one with --model"
        )
    key, attrs = next(iter(models.items()))
    return attrs.get("name"), key, attrs.get("name")


@dataclass
class BuildResult:
    index: str
    factory: str
    n_total: int
    n_added: int
    seconds: float
    gpu: bool
    params: dict = field(default_factory=dict)
    n_reports: int = 0  # entries that carry a report text


def build_index(
    *,
    cache: str | Path,
    index: str | Path,
    model: str | None = None,
    kind: str = "auto",
    add: bool = False,
    overwrite: bool = False,
    gpu: str = "auto",
    memory_budget_gb: float = 8.0,
    region: str | None = None,
    reports: str | Path | None = None,
) -> BuildResult:
    from ctvl_cli import __version__
    from ctvl_cli.api.zeroshot import cached_images
    from ctvl_cli.retrieval import index as ix

    t0 = time.perf_counter()
    ref, key, name = _cache_model(cache, model)
    if region is None:
        ids, emb, recs = cached_images(cache, key)
    else:
        from ctvl_cli.api.regions import check_region, latest_per_scan

        ids, emb, recs = latest_per_scan(*cached_images(cache, key, kind=check_region(region)))
    if not ids:
        what = f"{region} region" if region else "image"
        hint = f"ctvl embed SCANS --cache {cache} --regions auto" if region else None
        raise InputError(f"the cache holds no {what} embeddings of this model", path=cache, hint=hint)
    texts = _report_texts(reports)
    ngpu = ix.gpu_count()
    if gpu == "yes" and ngpu == 0:
        raise UsageError(
            "--gpu: FAISS sees no GPU", hint="install ctvl[gpu] on a CUDA machine, or drop --gpu"
        )
    use_gpu = ngpu > 0 and gpu != "no"
    d = Path(index)
    exists = (d / ix.SIDECAR).exists()
    if add:
        if not exists:
            raise UsageError("--add: no index to add to", path=d, hint="build it first (without --add)")
        idx, sc = ix.load(d)
        if sc.region != (region or ""):
            raise UsageError(
                f"index holds {sc.region or 'whole-scan'} embeddings, not {region or 'whole-scan'} ones",
                path=d,
                hint="build a separate index per region",
            )
        if sc.model_key != key:
            raise UsageError(
                f"index holds embeddings of {sc.model_name} ({sc.model_key[:12]}), cache entries are of "
                f"{name} ({key[:12]}): different models or preprocessing cannot be mixed",
                path=d,
                hint="build a separate index per model",
            )
        have = set(sc.ids)
        new = [i for i, x in enumerate(ids) if x not in have]
        if new:
            ix.add(idx, emb[new])
            sc.ids += [ids[i] for i in new]
            sc.names += [recs[i]["name"] for i in new]
            sc.sources += [recs[i]["source"] for i in new]
        if texts is not None or (new and sc.reports):
            old = dict(zip(sc.ids, sc.reports)) if sc.reports else {}
            sc.reports = [_text_for(n, texts) or old.get(i, "") for i, n in zip(sc.ids, sc.names)]
        if new or texts is not None:
            ix.save(d, idx, sc)
        return BuildResult(
            str(d),
            sc.factory,
            idx.ntotal,
            len(new),
            time.perf_counter() - t0,
            use_gpu,
            sc.params,
            sum(1 for t in sc.reports if t),
        )
    if exists and not overwrite:
        raise UsageError(
            "index directory already holds an index", path=d, hint="--add to add new scans, or --overwrite"
        )
    factory, params = ix.choose(len(ids), emb.shape[1], kind=kind, memory_budget=memory_budget_gb * 1e9)
    idx = ix.build(emb, factory, params, gpu=use_gpu)
    sc = ix.Sidecar(
        model=str(ref),
        model_key=key,
        model_name=str(name),
        dim=int(emb.shape[1]),
        factory=factory,
        params=params,
        ids=list(ids),
        names=[r["name"] for r in recs],
        sources=[r["source"] for r in recs],
        reports=[] if texts is None else [_text_for(r["name"], texts) for r in recs],
        cache=str(Path(cache).resolve()),
        ctvl_version=__version__,
        created=time.time(),
        region=region or "",
    )
    ix.save(d, idx, sc)
    n_rep = sum(1 for t in sc.reports if t)
    return BuildResult(
        str(d), factory, idx.ntotal, len(ids), time.perf_counter() - t0, use_gpu, params, n_rep
    )


def _report_texts(reports: str | Path | None) -> dict[str, str] | None:
    """{scan key: report text} of a reports CSV (ids = scan names), or None."""
    if reports is None:
        return None
    from ctvl_cli.api.reports import read_reports
    from ctvl_cli.zeroshot.truth import scan_key

    return {scan_key(r.id): r.text for r in read_reports(reports) if r.text}


def _text_for(name: str, texts: dict[str, str] | None) -> str:
    from ctvl_cli.zeroshot.truth import scan_key

    return "" if texts is None else texts.get(scan_key(name), "")


@dataclass
class Hit:
    query: str
    rank: int
    name: str
    score: float
    source: str
    id: str


def _embed_texts(model_ref: str, key: str, texts: list[str], device: str) -> np.ndarray:
    from ctvl_cli.api.zeroshot import encode_texts, resolve_key

    card, wpath, k2 = resolve_key(model_ref)
    if k2 != key:
        raise UsageError(f"model {model_ref} is not the model this index was built with", hint="pass --model")
    return encode_texts(card, wpath, texts, device=device, hint="use --image queries")[0]


def query_index(
    *,
    index: str | Path,
    images: list[str] | None = None,
    texts: list[tuple[str, str]] | None = None,
    k: int = 10,
    model: str | None = None,
    cache: str | Path | None = None,
    exclude_self: bool = False,
    device: str = "auto",
    gpu: str = "auto",
    regions: str = "auto",
) -> tuple[list[Hit], list]:
    """-> (hits, failed inputs). ``texts`` are (query id, text) pairs."""
    from ctvl_cli.retrieval import index as ix

    idx, sc = ix.load(index)
    ref = model or sc.model
    queries: list[tuple[str, str | None]] = []  # (label, own id)
    vecs: list[np.ndarray] = []
    failures: list = []
    if images:
        from ctvl_cli.api.embed import embed
        from ctvl_cli.api.zeroshot import cached_images

        with tempfile.TemporaryDirectory(prefix="ctvl-q-") as tmp:
            cpath = Path(cache) if cache else Path(tmp) / "q.h5"
            kind = f"region:{sc.region}" if sc.region else "image"
            er = embed(
                inputs=images,
                model=ref,
                cache=cpath,
                device=device,
                regions=regions if sc.region else None,
                command_line="ctvl retrieve query",
            )
            failures = er.failures
            ok = [it for it in er.items if it.status != "failed" and it.kind == kind]
            got, emb, recs = cached_images(cpath, sc.model_key, ids=[it.id for it in ok], kind=kind)
            by = dict(zip(got, emb))
            name_of = {r["id"]: r["name"] for r in recs}
            for it in ok:
                queries.append((name_of.get(it.id, it.name), it.id))
                vecs.append(by[it.id])
    if texts:
        temb = _embed_texts(ref, sc.model_key, [t for _, t in texts], device)
        for (qid, _), v in zip(texts, temb):
            queries.append((qid, None))
            vecs.append(v)
    if not vecs:
        return [], failures
    use_gpu = gpu != "no" and ix.gpu_count() > 0
    extra = 1 if exclude_self else 0
    scores, nn = ix.search(idx, np.stack(vecs), k + extra, sc.params, gpu=use_gpu)
    hits: list[Hit] = []
    for (qname, own), srow, nrow in zip(queries, scores, nn):
        rank = 0
        for s, j in zip(srow, nrow):
            if j < 0 or (exclude_self and own is not None and sc.ids[j] == own):
                continue
            rank += 1
            if rank > k:
                break
            hits.append(Hit(qname, rank, sc.names[j], float(s), sc.sources[j], sc.ids[j]))
    return hits, failures


def evaluate(
    *,
    cache: str | Path,
    labels: str | Path | None = None,
    reports: str | Path | None = None,
    model: str | None = None,
    map_ks=None,
    recall_ks=None,
    ctclip_compat: bool = False,
) -> dict:
    """Image->image MAP@K (needs labels) and report->image Recall@K (needs reports), exact search over the cache."""
    from ctvl_cli.api.zeroshot import cached_images
    from ctvl_cli.retrieval.metrics import DEFAULT_MAP_KS, DEFAULT_RECALL_KS, map_at_k, recall_at_k
    from ctvl_cli.zeroshot.truth import read_label_table, scan_key

    if labels is None and reports is None:
        raise UsageError(
            "nothing to evaluate", hint="--labels labels.csv (MAP@K) and/or --reports reports.csv (Recall@K)"
        )
    ref, key, name = _cache_model(cache, model)
    ids, emb, recs = cached_images(cache, key)
    keys = [scan_key(r["name"]) for r in recs]
    out: dict = {"model": name, "scans": len(ids), "ctclip_compat": ctclip_compat}
    if labels is not None:
        fnames, table = read_label_table(labels)
        rows = [i for i, kk in enumerate(keys) if kk in table]
        out["map_scans"] = len(rows)
        out["unlabelled_scans"] = len(ids) - len(rows)
        if not rows:
            raise InputError(
                "no cached scan has a label", path=labels, hint="first column must name the scans"
            )
        lab = np.array([table[keys[i]] for i in rows])
        out["map"] = map_at_k(emb[rows], lab, tuple(map_ks or DEFAULT_MAP_KS), ctclip_compat=ctclip_compat)
    if reports is not None:
        from ctvl_cli.api.reports import read_reports
        from ctvl_cli.cache.identity import text_identity

        rr = read_reports(reports)
        pos = {kk: i for i, kk in enumerate(keys)}
        pairs = [(r, pos[scan_key(r.id)]) for r in rr if scan_key(r.id) in pos]
        out["recall_queries"] = len(pairs)
        out["reports_without_scan"] = len(rr) - len(pairs)
        if not pairs:
            raise InputError("no report id matches a cached scan", path=reports)
        want = [text_identity(r.text) for r, _ in pairs]
        t_ids, t_emb, _ = _cached_texts(cache, key, sorted(set(want)))
        by = dict(zip(t_ids, t_emb))
        missing = sum(1 for w in want if w not in by)
        if missing:
            raise InputError(
                f"{missing} report texts are not in the cache",
                path=reports,
                hint=f"embed them first: ctvl embed --reports {reports} --cache {cache}",
            )
        t_emb = np.stack([by[w] for w in want])
        img_idx = np.array([i for _, i in pairs])
        # gallery = every distinct cached scan; target of text t = its scan
        out["recall"] = recall_at_k(
            t_emb, emb, tuple(recall_ks or DEFAULT_RECALL_KS), ctclip_compat=ctclip_compat, targets=img_idx
        )
    return out


def _cached_texts(cache, key, ids):
    from ctvl_cli.cache import EmbeddingCache

    with EmbeddingCache.open(cache, writable=False) as store:
        return store.get(key, kind="text", ids=ids)

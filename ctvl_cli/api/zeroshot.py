"""`ctvl zeroshot`: abnormality probabilities from label prompts (CT-CLIP protocol by default), or from a
linear-probe head (`finetune probe`), over cached image embeddings.

Image embeddings come from the HDF5 cache (``embed`` fills it for the given inputs first, skipping what is
cached). Prompt embeddings and the model's logit scale are cached too (kinds ``prompt`` and ``meta``), so a
second run over a cache imports no torch and loads no model.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ctvl_cli.errors import CacheLockedError, InputError, UsageError

PROMPT_KIND = "prompt"
META_KIND = "meta"
SCALE_ID = "meta:logit_scale"


@dataclass
class ZeroshotResult:
    model: str
    findings: list[str]
    names: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    probs: object = None  # (N, K) numpy array
    failures: list = field(default_factory=list)  # embed ItemResults that failed
    method: str = "prompts"
    warnings: list = field(default_factory=list)


def prompt_id(text: str) -> str:
    from ctvl_cli.cache.identity import text_identity

    return "prompt:" + text_identity(text).split(":", 1)[1]


def resolve_key(model: str | None, weights: str | None = None):
    """(card, weights path, model key) exactly as ``embed`` computes it."""
    from ctvl_cli.api.embed import DEFAULT_MODEL
    from ctvl_cli.cache import model_key
    from ctvl_cli.registry.weights import resolve_card_and_weights

    card, wpath, sha = resolve_card_and_weights(model or DEFAULT_MODEL, weights=weights)
    return (
        card,
        wpath,
        model_key(card=card.to_dict(), weights_sha256=sha, preprocess=card.preprocess.to_dict()),
    )


def cached_images(cache: str | Path, key: str, ids: list[str] | None = None, *, kind: str = "image"):
    """-> (ids, embeddings (N, D), records) of the images (or ``region:<organ>`` entries) of one model."""
    from ctvl_cli.cache import EmbeddingCache

    with EmbeddingCache.open(cache, writable=False) as store:
        if key not in store.models():
            names = sorted({m.get("name", "?") for m in store.models().values()})
            raise InputError(
                "the cache holds no embeddings of this model",
                path=cache,
                hint=f"models in it: {', '.join(names) or 'none'}; run `ctvl embed` first or pass --model",
            )
        return store.get(key, kind=kind, ids=ids)


def encode_texts(card, wpath, texts: Sequence[str], *, device: str = "cpu", hint: str = ""):
    """Embed texts with the model's text encoder (batches of 64) -> ((len(texts), D) array, logit scale)."""
    import numpy as np
    import torch

    from ctvl_cli.models.factory import create_model, create_tokenizer, resolve_device

    if not card.has_text:
        raise UsageError(f"model {card.name} has no text encoder", hint=hint or None)
    dev = resolve_device(device)
    mdl = create_model(card, weights_path=wpath, device=dev)
    tok = create_tokenizer(card)
    out = [np.zeros((0, card.embed_dim), np.float32)]
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            enc = tok(list(texts[i : i + 64]))
            e = mdl.encode_text(enc["input_ids"].to(dev), enc["attention_mask"].to(dev))
            out.append(e.float().cpu().numpy())
        scale = float(mdl.logit_scale())
    return np.concatenate(out), scale


def prompt_records(texts, embeddings, scale: float, *, dim: int) -> list:
    """Cache records of prompt embeddings (kind ``prompt``, id ``prompt:<sha>``) and the model's logit scale
    (kind ``meta``, id ``meta:logit_scale``, stored as a ``dim``-vector filled with the scale)."""
    import numpy as np

    from ctvl_cli.cache import EntryRecord

    recs = [
        EntryRecord(id=prompt_id(t), kind=PROMPT_KIND, name=t[:80], source="zeroshot prompt", embedding=v)
        for t, v in zip(texts, embeddings)
    ]
    recs.append(
        EntryRecord(
            id=SCALE_ID,
            kind=META_KIND,
            name="logit_scale",
            source="model",
            embedding=np.full(dim, scale, np.float32),
        )
    )
    return recs


def text_embeddings(
    card, wpath, key: str, texts: Sequence[str], *, cache: str | Path | None, device: str = "cpu"
):
    """(len(texts), D) embeddings of prompt texts and the model's logit scale, from the cache when possible;
    missing ones are computed with the model and stored (unless the cache is busy or read-only)."""
    import numpy as np

    from ctvl_cli.cache import EmbeddingCache

    ids = [prompt_id(t) for t in texts]
    have: dict[str, np.ndarray] = {}
    scale = None
    if cache is not None and Path(cache).exists():
        with EmbeddingCache.open(cache, writable=False) as store:
            if key in store.models():
                got_ids, emb, _ = store.get(key, kind=PROMPT_KIND, ids=ids)
                have = dict(zip(got_ids, emb))
                s_ids, s_emb, _ = store.get(key, kind=META_KIND, ids=[SCALE_ID])
                if s_ids:
                    scale = float(s_emb[0][0])
    missing = [t for t, i in zip(texts, ids) if i not in have]
    if missing or scale is None:
        emb_new, scale = encode_texts(
            card, wpath, missing, device=device, hint="use --head with a linear probe instead"
        )
        have.update({prompt_id(t): v for t, v in zip(missing, emb_new)})
        if cache is not None:
            dim = next(iter(have.values())).shape[0] if have else card.embed_dim
            recs = prompt_records(missing, emb_new, scale, dim=dim)
            with contextlib.suppress(CacheLockedError, PermissionError, OSError):
                with EmbeddingCache.open(cache, writable=True) as store:
                    store.register_model(
                        key,
                        name=card.name,
                        card=card.to_dict(),
                        weights_sha256=None,
                        preprocess=card.preprocess.to_dict(),
                    )
                    store.put(key, records=recs)
                    store.commit(force=True)
    return np.stack([have[i] for i in ids]), scale


def zeroshot(
    *,
    inputs: Sequence[str] = (),
    labels: str | Path | None = None,
    model: str | None = None,
    cache: str | Path | None = None,
    templates: str = "ctclip",
    head: str | Path | None = None,
    weights: str | None = None,
    batch_size: int = 4,
    workers: int = 0,
    device: str = "auto",
    region: str | None = None,
    regions: str = "auto",
    on_progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ZeroshotResult:
    """Score INPUTS (embedding them into ``cache`` first) or, with no inputs, every image of the model in
    ``cache``. Findings come from ``labels`` (prompt protocol) or from ``head`` (linear probe).
    ``region``: score the per-organ embeddings of that organ (``embed --regions``; masks from ``regions``)."""
    import numpy as np

    from ctvl_cli.zeroshot.labels import load_labels
    from ctvl_cli.zeroshot.scoring import class_embedding, l2n, zeroshot_probabilities

    if labels is None and head is None:
        raise UsageError("--labels is required", hint="a text file with one finding per line (or --head)")
    if not inputs and cache is None:
        raise UsageError("nothing to score", hint="pass scans, or --cache emb.h5 to score every cached scan")
    card, wpath, key = resolve_key(model, weights)
    kind = "image"
    if region is not None:
        from ctvl_cli.api.regions import check_region

        kind = check_region(region)
    findings = load_labels(labels, template_set=templates) if labels is not None else None
    h = None
    if head is not None:
        from ctvl_cli.train.probe import load_head

        h = load_head(head)
        if h.model_key != key:
            raise UsageError(
                f"head {head} was trained on embeddings of {h.model_name}, not of {card.name}",
                hint=f"pass --model {h.model_name}",
            )
    res_warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ctvl-zs-") as tmp:
        cache_path = Path(cache) if cache is not None else Path(tmp) / "emb.h5"
        failures: list = []
        if inputs:
            from ctvl_cli.api.embed import embed

            er = embed(
                inputs=inputs,
                model=model,
                cache=cache_path,
                weights=weights,
                batch_size=batch_size,
                workers=workers,
                device=device,
                regions=regions if region is not None else None,
                on_progress=on_progress,
                on_start=on_start,
                command_line="ctvl zeroshot",
            )
            failures = er.failures
            ok = [it for it in er.items if it.kind == kind and it.status != "failed"]
            ids, emb, recs = cached_images(cache_path, key, ids=[it.id for it in ok], kind=kind)
            if region is not None:
                res_warnings += er.warnings
                missing = {it.source for it in er.items if it.kind == "image"} - {it.source for it in ok}
                res_warnings += [
                    f"{Path(m).name}: no {region} region (organ empty or not segmented)"
                    for m in sorted(missing)
                ]
        else:
            ids, emb, recs = cached_images(cache_path, key, kind=kind)
            if region is not None:
                from ctvl_cli.api.regions import latest_per_scan

                ids, emb, recs = latest_per_scan(ids, emb, recs)
        if h is not None:
            names = h.findings
            if findings is not None:
                want = [f.name for f in findings]
                unknown = [n for n in want if n not in names]
                if unknown:
                    raise UsageError(
                        f"the head has no finding {unknown[0]!r}", hint=f"it has: {', '.join(names)}"
                    )
                sel = [names.index(n) for n in want]
            else:
                want, sel = names, list(range(len(names)))
            probs = h.predict(emb)[:, sel] if len(ids) else np.zeros((0, len(sel)))
            res = ZeroshotResult(model=card.name, findings=want, method="head")
        else:
            texts = sorted({t for f in findings for t in (*f.positive, *f.negative)})
            temb, scale = text_embeddings(card, wpath, key, texts, cache=cache_path, device=device)
            by_text = dict(zip(texts, temb))
            pos = np.stack([class_embedding(np.stack([by_text[t] for t in f.positive])) for f in findings])
            neg = np.stack([class_embedding(np.stack([by_text[t] for t in f.negative])) for f in findings])
            probs = (
                zeroshot_probabilities(l2n(emb), pos, neg, scale)
                if len(ids)
                else np.zeros((0, len(findings)))
            )
            res = ZeroshotResult(model=card.name, findings=[f.name for f in findings])
    res.warnings = res_warnings
    res.names = [r["name"] for r in recs]
    res.sources = [r["source"] for r in recs]
    res.probs = probs
    res.failures = failures
    return res

"""Retrieval metrics with the definitions of CT-CLIP's official scripts.

Image->image "MAP@K" (``scripts/volume_to_volume_new.py``): queries are all scans; the gallery is the scans with at
least one positive label; similarity is cosine; the relevance of a hit is the Jaccard overlap of the positive
label sets, ``|A & B| / (|A & B| + |A ^ B|)``; a query scores the mean relevance of its top-K hits; MAP@K is the
mean over queries. Ranking ties are broken by gallery order (Python's stable ``sorted``).

The official script has two quirks. ctvl's default fixes both; ``ctclip_compat=True`` reproduces them:
  * self-match: the query is not removed from the gallery, so a scan with findings finds itself at rank 1;
  * running mean: its accumulator is not reset between K values, so the reported MAP@K is the mean over all
    K' <= K of the per-K values (each K contributes one value per query).

Report->image Recall@K (``scripts/report_to_volume_new.py``): text i's paired image is image i; hit when it is in
the top K by dot product of L2-normalised embeddings. Default: ties count against the paired image (pessimistic);
compat: stable order by image index, as the script does.
"""

from __future__ import annotations

import numpy as np

from ctvl_cli.zeroshot.scoring import l2n

DEFAULT_MAP_KS = (1, 5, 10, 50)
DEFAULT_RECALL_KS = (5, 10, 50, 100)


def _l2n(x: np.ndarray) -> np.ndarray:
    return l2n(np.asarray(x, np.float64))


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, L) and (m, L) 0/1 label matrices -> (n, m) Jaccard overlap of positive sets (0 when both empty)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def map_at_k(
    emb: np.ndarray, labels: np.ndarray, ks=DEFAULT_MAP_KS, *, ctclip_compat: bool = False, chunk: int = 1024
) -> dict[int, float]:
    emb = _l2n(emb)
    labels = np.asarray(labels)
    gal = np.flatnonzero(labels.sum(1) > 0)
    if len(gal) == 0:
        return {int(k): float("nan") for k in ks}
    g_emb, g_lab = emb[gal], labels[gal]
    kmax = max(ks)
    per_k: dict[int, list[float]] = {int(k): [] for k in ks}
    for s in range(0, len(emb), chunk):
        q = np.arange(s, min(s + chunk, len(emb)))
        sim = emb[q] @ g_emb.T
        if not ctclip_compat:
            pos = np.searchsorted(gal, q)
            is_self = (pos < len(gal)) & (gal[np.minimum(pos, len(gal) - 1)] == q)
            sim[np.flatnonzero(is_self), pos[is_self]] = -np.inf
        order = np.argsort(-sim, axis=1, kind="stable")[:, :kmax]
        rel = jaccard(labels[q], g_lab)
        top_rel = np.take_along_axis(rel, order, axis=1)
        for k in ks:
            kk = min(int(k), g_emb.shape[0] - (0 if ctclip_compat else 1))
            per_k[int(k)].extend(top_rel[:, : max(kk, 1)].mean(axis=1).tolist())
    out: dict[int, float] = {}
    acc: list[float] = []
    for k in ks:
        if ctclip_compat:
            acc.extend(per_k[int(k)])
            out[int(k)] = float(np.mean(acc))
        else:
            out[int(k)] = float(np.mean(per_k[int(k)]))
    return out


def recall_at_k(
    text_emb: np.ndarray,
    image_emb: np.ndarray,
    ks=DEFAULT_RECALL_KS,
    *,
    ctclip_compat: bool = False,
    targets: np.ndarray | None = None,
) -> dict[int, float]:
    """Text i's relevant image is ``targets[i]`` (default i)."""
    t, im = _l2n(text_emb), _l2n(image_emb)
    tgt = np.arange(len(t)) if targets is None else np.asarray(targets)
    ranks = np.empty(len(t), np.int64)
    for s in range(0, len(t), 1024):
        sim = t[s : s + 1024] @ im.T
        rows = np.arange(sim.shape[0])
        own = sim[rows, tgt[s : s + 1024]][:, None]
        if ctclip_compat:  # stable order: earlier images win ties
            cols = np.arange(im.shape[0])[None, :]
            better = (sim > own) | ((sim == own) & (cols < tgt[s : s + 1024][:, None]))
            ranks[s : s + 1024] = better.sum(1) + 1
        else:
            ranks[s : s + 1024] = (sim >= own).sum(1)
    return {int(k): float((ranks <= k).mean()) for k in ks}

"""Classification metrics (numpy only), matching the definitions the official CT-CLIP scripts use
(scikit-learn's ``roc_auc_score`` / ``roc_curve``; threshold = ROC point closest to the (0, 1) corner)."""

from __future__ import annotations

import numpy as np


def _rank_average(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged (scipy.stats.rankdata 'average')."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    n = len(x)
    # boundaries of tie groups
    bounds = np.flatnonzero(np.diff(xs)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    avg = (starts + ends + 1) / 2.0
    for s, e, a in zip(starts, ends, avg):
        ranks[order[s:e]] = a
    return ranks


def auroc(y_true, score) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties count 1/2); NaN when only one class is present."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    npos = int(y.sum())
    nneg = len(y) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    r = _rank_average(s)
    return float((r[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def roc_curve(y_true, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) like ``sklearn.metrics.roc_curve(drop_intermediate=False)``: one point per distinct
    score (descending), preceded by the (0, 0) point at threshold +inf."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    npos, nneg = max(int(y.sum()), 1), max(len(y) - int(y.sum()), 1)
    tpr = np.r_[0.0, tps / npos]
    fpr = np.r_[0.0, fps / nneg]
    thr = np.r_[np.inf, s[last]]
    return fpr, tpr, thr


def closest_to_corner_threshold(y_true, score) -> float:
    """CT-CLIP's threshold choice: the ROC point with the smallest distance to (fpr=0, tpr=1)."""
    fpr, tpr, thr = roc_curve(y_true, score)
    d = np.sqrt(fpr**2 + (1 - tpr) ** 2)
    t = thr[int(np.argmin(d))]
    return float(t) if np.isfinite(t) else float(np.max(score)) + 1.0


def binary_metrics(y_true, pred) -> dict[str, float]:
    y = np.asarray(y_true).astype(bool).ravel()
    p = np.asarray(pred).astype(bool).ravel()
    tp = int((y & p).sum())
    fp = int((~y & p).sum())
    fn = int((y & ~p).sum())
    tn = int((~y & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {
        "f1": f1,
        "precision": prec,
        "recall": rec,
        "specificity": tn / (tn + fp) if tn + fp else 0.0,
        "accuracy": (tp + tn) / max(len(y), 1),
    }

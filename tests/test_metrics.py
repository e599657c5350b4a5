"""Classification metrics against brute-force definitions (what scikit-learn computes)."""

from __future__ import annotations

import numpy as np

from ctvl_cli.metrics import auroc, binary_metrics, closest_to_corner_threshold, roc_curve


def _brute_auroc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_auroc_with_ties_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 50)
        y[:2] = [0, 1]
        s = rng.integers(0, 6, 50) / 5.0  # many ties
        assert abs(auroc(y, s) - _brute_auroc(y, s)) < 1e-12
    assert np.isnan(auroc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_roc_curve_and_corner_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.9])
    fpr, tpr, thr = roc_curve(y, s)
    for f, t, th in zip(fpr, tpr, thr):  # each point is the rate of `score >= threshold`
        assert f == ((s >= th) & (y == 0)).sum() / 3 and t == ((s >= th) & (y == 1)).sum() / 3
    best = closest_to_corner_threshold(y, s)
    d = [np.hypot(((s >= t) & (y == 0)).sum() / 3, 1 - ((s >= t) & (y == 1)).sum() / 3) for t in np.unique(s)]
    assert np.hypot(((s >= best) & (y == 0)).sum() / 3, 1 - ((s >= best) & (y == 1)).sum() / 3) == min(d)
    m = binary_metrics(y, s >= best)
    assert 0 <= m["f1"] <= 1 and m["accuracy"] == ((s >= best) == y).mean()

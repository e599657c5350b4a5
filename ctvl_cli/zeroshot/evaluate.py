"""`zeroshot eval`: per-finding metrics with CT-CLIP's conventions.

* AUROC: area under the ROC curve (as ``sklearn.metrics.roc_auc_score``).
* Threshold: the ROC point closest to (FPR 0, TPR 1) on the full set; F1, precision, recall (sensitivity),
  specificity and accuracy of ``score >= threshold``.
* Bootstrap 95% CIs: ``n_boot`` resamples of the scans with replacement (one set of resampled indices shared by
  all findings); the threshold stays the one chosen on the full set; bounds are the sorted values at indices
  ``int(0.025 n) - 1`` and ``int(0.975 n) - 1`` (CT-CLIP's ``compute_cis``). Resamples where a finding has a
  single class give no AUROC and are left out of that finding's interval.
* Macro means: unweighted means over findings with both classes present.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctvl_cli.errors import InputError
from ctvl_cli.metrics import auroc, binary_metrics, closest_to_corner_threshold
from ctvl_cli.zeroshot.truth import read_label_table, scan_key

METRICS = ("auroc", "f1", "precision", "recall", "specificity", "accuracy")


@dataclass
class EvalReport:
    n: int
    rows: list[dict] = field(default_factory=list)
    macro: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    skipped_findings: list[str] = field(default_factory=list)


def read_predictions(path: str | Path) -> tuple[list[str], dict[str, list[float]]]:
    """CSV written by ``ctvl zeroshot -f csv``: ``scan`` column, one probability column per finding; call columns
    (``... (call)``) and ``source`` are ignored."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            "predictions file not found", path=p, hint="write it with `ctvl zeroshot ... -f csv > pred.csv`"
        )
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        id_col = next((c for c in cols if c.lower() in ("scan", "volumename", "id", "name")), None)
        if id_col is None:
            raise InputError(
                "no scan column", path=p, hint="expected a 'scan' column as `ctvl zeroshot -f csv` writes"
            )
        findings = [c for c in cols if c != id_col and c != "source" and not c.endswith("(call)")]
        out: dict[str, list[float]] = {}
        for ln, r in enumerate(reader, start=2):
            try:
                out[scan_key(r[id_col])] = [float(r[f]) for f in findings]
            except (TypeError, ValueError):
                raise InputError(f"line {ln}: non-numeric probability", path=p) from None
    return findings, out


def _metrics(y: np.ndarray, s: np.ndarray, thr: float) -> dict[str, float]:
    return {"auroc": auroc(y, s), **binary_metrics(y, s >= thr)}


def evaluate_arrays(
    y: np.ndarray, s: np.ndarray, findings: list[str], *, n_boot: int = 1000, seed: int = 0
) -> tuple[list[dict], dict[str, float], dict[str, float]]:
    rows, thresholds = [], {}
    rng = np.random.default_rng(seed)
    boots = [rng.integers(0, len(y), len(y)) for _ in range(n_boot)]
    for k, f in enumerate(findings):
        yk, sk = y[:, k], s[:, k]
        thr = closest_to_corner_threshold(yk, sk) if 0 < yk.sum() < len(yk) else 0.5
        thresholds[f] = thr
        m = _metrics(yk, sk, thr)
        row = {"finding": f, "n": len(yk), "positives": int(yk.sum()), "threshold": round(thr, 6)}
        row.update({name: round(v, 4) for name, v in m.items()})
        if n_boot:
            samples = {name: [] for name in METRICS}
            for idx in boots:
                mb = _metrics(yk[idx], sk[idx], thr)
                for name in METRICS:
                    if mb[name] == mb[name]:
                        samples[name].append(mb[name])
            for name in METRICS:
                v = np.sort(samples[name])
                if len(v):
                    lo = v[max(int(0.025 * len(v)) - 1, 0)]
                    hi = v[max(int(0.975 * len(v)) - 1, 0)]
                    row[f"{name}_ci"] = f"{lo:.4f}-{hi:.4f}"
        rows.append(row)
    macro = {}
    for name in METRICS:
        vals = [r[name] for r in rows if r[name] == r[name] and 0 < r["positives"] < r["n"]]
        macro[name] = float(np.mean(vals)) if vals else float("nan")
    rows.append(
        {
            "finding": "MACRO",
            "n": len(y),
            "positives": int(y.sum()),
            **{k: round(v, 4) for k, v in macro.items()},
        }
    )
    return rows, macro, thresholds


def evaluate_files(pred: str | Path, truth: str | Path, *, n_boot: int = 1000, seed: int = 0) -> EvalReport:
    pf, pmap = read_predictions(pred)
    tf, tmap = read_label_table(truth)
    findings = [f for f in pf if f in tf]
    skipped = [f for f in pf if f not in tf] + [f for f in tf if f not in pf]
    if not findings:
        raise InputError(
            "no finding is in both files", path=pred, hint=f"labels have: {', '.join(tf[:5])}..."
        )
    common = [k for k in tmap if k in pmap]
    if not common:
        raise InputError(
            "no scan is in both files", path=pred, hint="scan names must match the labels' first column"
        )
    y = np.array([[tmap[k][tf.index(f)] for f in findings] for k in common])
    s = np.array([[pmap[k][pf.index(f)] for f in findings] for k in common])
    rows, macro, thr = evaluate_arrays(y, s, findings, n_boot=n_boot, seed=seed)
    return EvalReport(
        n=len(common),
        rows=rows,
        macro=macro,
        thresholds=thr,
        missing=[k for k in tmap if k not in pmap],
        extra=[k for k in pmap if k not in tmap],
        skipped_findings=skipped,
    )

"""Report-generation metrics: BLEU-1..4, ROUGE-L, METEOR (when NLTK and its WordNet data are installed) and
clinical efficacy (precision/recall/F1 of the 18 CT-RATE findings extracted by the labeler from both texts).

Tokenisation (all text metrics): lower case, word and number tokens (``[a-z0-9]+`` joined by ``.``, ``'`` or
``-`` inside a token: ``1.5``, ``ground-glass``), punctuation dropped — as pycocoevalcap's PTB tokenizer does
for the report-generation papers.

* BLEU-n: corpus BLEU (Papineni et al.): clipped n-gram counts summed over the corpus, uniform weights over
  1..n, brevity penalty from the summed reference and hypothesis lengths, no smoothing (a corpus with no
  matching n-gram of some order scores 0). Equals ``nltk.translate.bleu_score.corpus_bleu`` on the same tokens.
* ROUGE-L: per report LCS F1 (recall and precision of the longest common subsequence, beta = 1), averaged over
  reports. Equals the ``rougeL`` F-measure of Google's ``rouge-score`` on the same tokens.
* METEOR: ``nltk.translate.meteor_score`` (exact, stem and WordNet-synonym matches) averaged over reports; only
  when NLTK and its WordNet corpus are installed (``python -m nltk.downloader wordnet``), else reported as
  unavailable — never approximated.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+(?:[.'\-][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _ngrams(toks: Sequence[str], n: int) -> Counter:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def corpus_bleu(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], max_n: int = 4) -> list[float]:
    """[BLEU-1, ..., BLEU-max_n] of tokenised hypotheses against one tokenised reference each."""
    match = [0] * max_n
    total = [0] * max_n
    hyp_len = ref_len = 0
    for r, h in zip(refs, hyps):
        hyp_len += len(h)
        ref_len += len(r)
        for n in range(1, max_n + 1):
            hc, rc = _ngrams(h, n), _ngrams(r, n)
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0:
        return [0.0] * max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    out = []
    for n in range(1, max_n + 1):
        ps = [match[i] / total[i] if total[i] else 0.0 for i in range(n)]
        out.append(0.0 if min(ps) == 0 else bp * math.exp(sum(math.log(p) for p in ps) / n))
    return out


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(ref: Sequence[str], hyp: Sequence[str]) -> float:
    """LCS F1 of one pair (0 when either is empty)."""
    lcs = _lcs(ref, hyp)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(hyp), lcs / len(ref)
    return 2 * p * r / (p + r)


def meteor(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> tuple[float | None, str | None]:
    """(mean METEOR, None), or (None, why it is unavailable)."""
    try:
        import nltk
        from nltk.translate.meteor_score import meteor_score
    except ImportError:
        return None, "NLTK is not installed (pip install 'ctvl[metrics]')"
    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        try:
            nltk.data.find("corpora/wordnet.zip")
        except LookupError:
            return None, "NLTK's WordNet data is not installed (python -m nltk.downloader wordnet)"
    scores = [meteor_score([list(r)], list(h)) for r, h in zip(refs, hyps)]
    return (float(np.mean(scores)) if scores else None), None


def prf_table(truth: np.ndarray, pred: np.ndarray, names: Sequence[str] | None = None):
    """Per-finding precision/recall/F1 of 0/1 matrices (N, K) -> (rows, macro). A finding with no positive in
    either matrix has undefined scores (None) and is left out of the macro means; otherwise an empty
    denominator counts as 0."""
    if names is None:
        from ctvl_cli.reports.labeler import FINDINGS

        names = FINDINGS
    truth, pred = np.asarray(truth).astype(bool), np.asarray(pred).astype(bool)
    rows = []
    for k, name in enumerate(names):
        t, p = truth[:, k], pred[:, k]
        tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
        if tp + fp + fn == 0:
            prec = rec = f1 = None
        else:
            prec = tp / (tp + fp) if tp + fp else 0.0
            rec = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append(
            {
                "finding": name,
                "support": int(t.sum()),
                "predicted": int(p.sum()),
                "precision": prec,
                "recall": rec,
                "f1": f1,
            }
        )

    def mean(key: str) -> float:
        vals = [r[key] for r in rows if r[key] is not None]
        return float(np.mean(vals)) if vals else float("nan")

    tp, fp, fn = int((truth & pred).sum()), int((~truth & pred).sum()), int((truth & ~pred).sum())
    micro_p = tp / (tp + fp) if tp + fp else 0.0
    micro_r = tp / (tp + fn) if tp + fn else 0.0
    macro = {
        "precision": mean("precision"),
        "recall": mean("recall"),
        "f1": mean("f1"),
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0,
    }
    return rows, macro


def evaluate_texts(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Every metric of generated reports ``hyps`` against reference reports ``refs`` (aligned lists).

    Returns ``{"n", "bleu_1".."bleu_4", "rouge_l", "meteor" (None when unavailable), "meteor_note",
    "ce": {"rows": per-finding P/R/F1, "macro": {...}}}``."""
    from ctvl_cli.reports.labeler import label_reports

    rt = [tokenize(t) for t in refs]
    ht = [tokenize(t) for t in hyps]
    bleu = corpus_bleu(rt, ht, 4)
    met, note = meteor(rt, ht)
    rows, macro = prf_table(label_reports(refs), label_reports(hyps))
    return {
        "n": len(refs),
        **{f"bleu_{n}": bleu[n - 1] for n in range(1, 5)},
        "rouge_l": float(np.mean([rouge_l(r, h) for r, h in zip(rt, ht)])) if rt else float("nan"),
        "meteor": met,
        "meteor_note": note,
        "ce": {"rows": rows, "macro": macro},
    }

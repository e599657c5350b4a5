"""Report-generation metrics (BLEU, ROUGE-L, METEOR availability, clinical efficacy) and `ctvl generate-report
eval` end to end."""

from __future__ import annotations

import csv
import json

import pytest

from ctvl_cli.cli.app import app
from ctvl_cli.reports.metrics import corpus_bleu, evaluate_texts, prf_table, rouge_l, tokenize

REFS = [
    "No pleural effusion. A 6 mm nodule is seen in the right upper lobe. Cardiomegaly is present.",
    "Trachea and both main bronchi are patent. Bilateral pleural effusion, 12 mm in depth.",
    "Emphysematous changes in both lungs. No consolidation. Coronary artery calcification.",
]
HYPS = [
    "No pleural effusion. A nodule is seen in the right lower lobe. The heart is enlarged.",
    "Trachea and main bronchi are patent. Right pleural effusion.",
    "Emphysema in both lungs. Consolidation in the left lower lobe.",
]


def test_tokenize_keeps_numbers_and_hyphenated_words():
    assert tokenize("A 1.5 cm Ground-glass opacity; no effusion.") == [
        "a", "1.5", "cm", "ground-glass", "opacity", "no", "effusion",
    ]  # fmt: skip


def test_bleu_equals_nltk_corpus_bleu():
    from nltk.translate.bleu_score import corpus_bleu as nltk_bleu

    r = [tokenize(t) for t in REFS]
    h = [tokenize(t) for t in HYPS]
    ours = corpus_bleu(r, h, 4)
    for n in range(1, 5):
        w = tuple([1.0 / n] * n)
        assert ours[n - 1] == pytest.approx(nltk_bleu([[x] for x in r], h, weights=w), abs=1e-12)
    assert corpus_bleu(r, r, 4) == [1.0] * 4
    assert corpus_bleu(r, [["zzz"]] * 3, 4) == [0.0] * 4


def test_rouge_l_equals_rouge_score():
    from rouge_score import rouge_scorer

    class Tok:
        def tokenize(self, text):
            return tokenize(text)

    sc = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tok())
    for ref, hyp in zip(REFS, HYPS):
        assert rouge_l(tokenize(ref), tokenize(hyp)) == pytest.approx(sc.score(ref, hyp)["rougeL"].fmeasure)
    assert rouge_l([], ["a"]) == 0.0


def test_meteor_is_reported_unavailable_without_wordnet_never_approximated():
    m = evaluate_texts(REFS, HYPS)
    try:
        import nltk

        nltk.data.find("corpora/wordnet")
        have = True
    except (ImportError, LookupError):
        have = False
    if have:
        assert 0 < m["meteor"] <= 1
    else:
        assert (m["meteor"] is None and "WordNet" in m["meteor_note"]) or "NLTK" in m["meteor_note"]


def test_clinical_efficacy_from_labeler():
    m = evaluate_texts(REFS, HYPS)
    rows = {r["finding"]: r for r in m["ce"]["rows"]}
    # refs: nodule, cardiomegaly, pleural effusion, emphysema, coronary calcification
    # hyps: nodule, cardiomegaly (enlarged heart), pleural effusion, emphysema, consolidation (FP)
    assert rows["Lung nodule"]["f1"] == 1.0 and rows["Cardiomegaly"]["f1"] == 1.0
    assert rows["Consolidation"]["precision"] == 0.0 and rows["Consolidation"]["support"] == 0
    assert rows["Coronary artery wall calcification"]["recall"] == 0.0
    assert rows["Hiatal hernia"]["f1"] is None  # never mentioned: undefined, left out of the macro mean
    defined = [r["f1"] for r in m["ce"]["rows"] if r["f1"] is not None]
    assert m["ce"]["macro"]["f1"] == pytest.approx(sum(defined) / len(defined))


def test_prf_table_counts():
    import numpy as np

    rows, macro = prf_table(
        np.array([[1, 0], [1, 1], [0, 0]]), np.array([[1, 1], [0, 1], [0, 0]]), ["a", "b"]
    )
    assert rows[0] == {
        "finding": "a",
        "support": 2,
        "predicted": 1,
        "precision": 1.0,
        "recall": 0.5,
        "f1": 2 / 3,
    }
    assert rows[1]["precision"] == 0.5 and rows[1]["recall"] == 1.0
    assert macro["micro_precision"] == 2 / 3 and macro["micro_recall"] == 2 / 3


def _write(path, header, rows):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_eval_cli(runner, tmp_path):
    truth = _write(tmp_path / "truth.csv", ["VolumeName", "report_text"], [
        (f"scan{i}.nii.gz", t) for i, t in enumerate(REFS)
    ] + [("scan9.nii.gz", "No pleural effusion.")])  # fmt: skip
    pred = _write(tmp_path / "pred.csv", ["id", "method", "model", "report"], [
        (f"scan{i}", "lm", "m", t) for i, t in enumerate(HYPS)
    ])  # fmt: skip
    r = runner.invoke(
        app, ["generate-report", "eval", "--pred", str(pred), "--truth", str(truth), "-f", "json"]
    )
    assert r.exit_code == 0, r.stderr
    got = {x["metric"]: x for x in json.loads(r.stdout)}
    want = evaluate_texts(REFS, HYPS)
    assert got["BLEU-4"]["value"] == pytest.approx(want["bleu_4"], abs=1e-4)
    assert got["ROUGE-L"]["value"] == pytest.approx(want["rouge_l"], abs=1e-4)
    assert got["CE macro F1"]["value"] == pytest.approx(want["ce"]["macro"]["f1"], abs=1e-4)
    assert got["BLEU-1"]["reports"] == 3
    assert "scan9" in r.stderr  # a reference without a generated report is named, not silently dropped
    r = runner.invoke(app, ["generate-report", "eval", "--pred", str(pred), "--truth", str(truth), "--per-finding", "-f", "csv"])  # fmt: skip
    assert r.exit_code == 0 and "CE Lung nodule f1" in r.stdout
    bad = _write(tmp_path / "bad.csv", ["id", "report"], [("other", "x")])
    r = runner.invoke(app, ["generate-report", "eval", "--pred", str(bad), "--truth", str(truth)])
    assert r.exit_code == 2 and r.stdout == "" and "no generated report matches" in r.stderr
    r = runner.invoke(
        app, ["generate-report", "eval", "--pred", str(tmp_path / "none.csv"), "--truth", str(truth)]
    )
    assert r.exit_code == 2 and "not found" in r.stderr

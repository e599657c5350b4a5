"""The CT-RATE report labeler (``ctvl_cli.reports.labeler``) against CT-RATE's manual labels
(../shared/data/ct_rate_reports, 800 train / 200 val reports, 18 findings).

    python bench/report_labeler.py                       # train split: per-finding P/R/F1 and macro F1
    python bench/report_labeler.py --errors "Lung nodule" # train split: the sentences behind FPs and FNs
    python bench/report_labeler.py --split val --write    # the final measurement, into bench/RESULTS.md

Rules are developed on the train split only; the val split is measured once, for the record.
Baseline in the same run: keyword matching without negation handling (a finding is 1 when any of its
patterns occurs anywhere in the report), which shows what the negation and exclusion logic adds.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, write_section

FILES = {
    "train": "ctrate_manual_labels_train.csv",
    "val": "ctrate_manual_labels_val.csv",
}


def read(split: str):
    p = SHARED / "data" / "ct_rate_reports" / FILES[split]
    with p.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    from ctvl_cli.reports.labeler import FINDINGS

    texts = [r["report_text"] for r in rows]
    truth = np.array([[int(r[f]) for f in FINDINGS] for r in rows], dtype=np.uint8)
    return [r["AccessionNo"] for r in rows], texts, truth


def keyword_baseline(texts):
    """Any pattern match anywhere, no negation/exclusion/uncertainty logic."""
    from ctvl_cli.reports.labeler import load_rules, split_sentences

    rules = load_rules()
    out = np.zeros((len(texts), len(rules.findings)), np.uint8)
    for i, t in enumerate(texts):
        sents = split_sentences(t)
        for k, f in enumerate(rules.findings):
            out[i, k] = any(p.search(s) for s in sents for p in f.patterns)
    return out


def prf(truth, pred):
    from ctvl_cli.reports.metrics import prf_table

    return prf_table(truth, pred)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=sorted(FILES), default="train")
    ap.add_argument(
        "--errors", metavar="FINDING", help="print the sentences behind false positives/negatives"
    )
    ap.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    a = ap.parse_args()
    if a.write and a.split != "val":
        ap.error("--write records the val measurement only")
    from ctvl_cli.reports.labeler import FINDINGS, explain, label_reports

    ids, texts, truth = read(a.split)
    pred = label_reports(texts)
    if a.errors:
        k = FINDINGS.index(a.errors)
        for i in np.flatnonzero(pred[:, k] != truth[:, k]):
            kind = "FP" if pred[i, k] else "FN"
            ms = explain(texts[i], all_mentions=True).get(a.errors, [])
            print(f"--- {kind} {ids[i]}")
            for m in ms:
                print(f"   [{m.status}{'' if m.trigger is None else ' by ' + repr(m.trigger)}] {m.sentence}")
            if not ms:
                print("   (no mention) " + texts[i][:600])
        return
    rows, macro = prf(truth, pred)
    _, base_macro = prf(truth, keyword_baseline(texts))
    lines = [
        f"CT-RATE manual labels, {a.split} split ({len(texts)} reports); labeler vs keyword baseline (no negation).",
        "",
        "| finding | positives | precision | recall | F1 |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['finding']} | {r['support']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} |"
        )
    lines.append(
        f"| **macro** | | {macro['precision']:.3f} | {macro['recall']:.3f} | **{macro['f1']:.3f}** |"
    )
    lines += [
        "",
        f"Keyword baseline (same patterns, no negation/exclusion logic): macro F1 {base_macro['f1']:.3f}.",
    ]
    text = "\n".join(lines)
    print(text)
    if a.write:
        write_section(
            "report-labeler",
            "Report labeler on CT-RATE manual labels — `bench/report_labeler.py`",
            "python bench/report_labeler.py --split val --write",
            text + "\n\nRules were developed on the 800 train reports only (train macro F1 is printed by "
            "`python bench/report_labeler.py`); this val number was measured once.",
        )


if __name__ == "__main__":
    main()

"""The negation-aware CT-RATE report labeler: rules on hand-written sentences, exact recovery of the labels of
phantom reports, and agreement with CT-RATE's manual labels on the train split (the development split)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ctvl_cli.reports.labeler import FINDINGS, explain, label_report, label_reports, load_rules
from ctvl_cli.reports.metrics import prf_table


def test_findings_are_the_18_ctrate_classes_in_order():
    from ctvl_cli.phantom import finding_names

    assert list(FINDINGS) == finding_names() and len(FINDINGS) == 18


@pytest.mark.parametrize(
    ("text", "finding", "want"),
    [
        ("Small right pleural effusion. No pericardial effusion.", "Pleural effusion", 1),
        ("Small right pleural effusion. No pericardial effusion.", "Pericardial effusion", 0),
        ("Pleural effusion-thickening was not detected.", "Pleural effusion", 0),
        ("No enlarged lymph nodes in mediastinal or hilar stations.", "Lymphadenopathy", 0),
        ("Enlarged lymph nodes up to 14 mm are seen at the subcarinal station.", "Lymphadenopathy", 1),
        ("There is no nodule, but a 6 mm nodule is seen in the right upper lobe.", "Lung nodule", 1),
        (
            "Calcified plaques are present in the coronary arteries (LAD).",
            "Coronary artery wall calcification",
            1,
        ),
        ("Calcified plaques are present in the coronary arteries (LAD).", "Arterial wall calcification", 0),
        ("Atheromatous calcifications in the wall of the thoracic aorta.", "Arterial wall calcification", 1),
        ("Cardiac enlargement is observed.", "Cardiomegaly", 1),
        ("Heart size is within normal limits.", "Cardiomegaly", 0),
        ("A nodule in the thyroid gland.", "Lung nodule", 0),
        ("Possible early consolidation in the left lower lobe?", "Consolidation", 1),
        ("No change in the known emphysema.", "Emphysema", 1),
    ],
)
def test_sentences(text, finding, want):
    assert label_report(text)[finding] == want, explain(text, all_mentions=True)


def test_label_reports_shape_and_explain():
    y = label_reports(["No pleural effusion.", "Bilateral pleural effusion. Emphysema."])
    assert y.shape == (2, 18) and y.dtype == np.uint8
    assert y[0].sum() == 0 and y[1, FINDINGS.index("Pleural effusion")] == 1
    why = explain("Bilateral pleural effusion. No emphysema.")
    assert list(why) == ["Pleural effusion"] and why["Pleural effusion"][0].status == "positive"


def test_bad_rule_file_is_an_input_error(tmp_path):
    from ctvl_cli.errors import InputError

    p = tmp_path / "rules.yaml"
    p.write_text("findings: {Cardiomegaly: {patterns: ['(']}}\n")
    with pytest.raises(InputError, match="differ from CT-RATE"):
        load_rules(path=p)


def test_phantom_reports_are_labelled_exactly():
    """Every wording the phantom generator uses (own phrasing, generic templates, negations) is read right."""
    from ctvl_cli.phantom.reports import write_report

    rng = np.random.default_rng(11)
    details = {
        "Medical material": {"devices": ["port catheter", "sternotomy wires"]},
        "Coronary artery wall calcification": {"vessels": ["LAD", "RCA"]},
        "Lymphadenopathy": {"stations": ["subcarinal"], "size_mm": 14},
        "Lung nodule": {"count": 2, "size_mm": 9, "side": "left", "lobe": "upper lobe"},
    }
    truth, texts = [], []
    for _ in range(600):
        lab = {n: int(rng.random() < 0.3) for n in FINDINGS}
        f, imp = write_report(lab, details, rng)
        truth.append([lab[n] for n in FINDINGS])
        texts.append(f"{f} {imp}")
    rows, macro = prf_table(np.array(truth), label_reports(texts))
    assert macro["f1"] == 1.0, [r for r in rows if r["f1"] != 1.0]


@pytest.mark.integration
def test_ctrate_train_split_macro_f1(shared):
    p = shared("data", "ct_rate_reports", "ctrate_manual_labels_train.csv")
    with p.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    truth = np.array([[int(r[f]) for f in FINDINGS] for r in rows])
    _, macro = prf_table(truth, label_reports([r["report_text"] for r in rows]))
    assert macro["f1"] >= 0.9, macro


def test_cli_label_writes_ctrate_layout_usable_as_truth(tmp_path, shared):
    """`ctvl generate-report label` on CT-RATE's train reports: CT-RATE's label layout on stdout, equal to the
    library's labels, with evidence sentences; then `zeroshot eval` accepts it as --truth."""
    import io
    import json

    from typer.testing import CliRunner

    from ctvl_cli.cli.app import app

    p = shared("data", "ct_rate_reports", "ctrate_manual_labels_train.csv")
    with p.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:60]
    sub = tmp_path / "reports.csv"
    with sub.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = CliRunner().invoke(app, ["generate-report", "label", str(sub), "--evidence"])
    assert r.exit_code == 0, r.stderr
    out = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(out[0]) == ["VolumeName", *FINDINGS, "evidence"] and len(out) == 60
    want = label_reports([x["report_text"] for x in rows])
    got = np.array([[int(x[f]) for f in FINDINGS] for x in out])
    assert (got == want).all() and got.sum() > 0
    for x in out:  # each positive finding is named in the evidence with a sentence of the report
        pos = [f for f in FINDINGS if x[f] == "1"]
        assert all(f"{f}: " in x["evidence"] for f in pos) and (x["evidence"] == "") == (not pos)
    r = CliRunner().invoke(app, ["generate-report", "label", str(sub)])
    assert r.exit_code == 0 and next(iter(csv.DictReader(io.StringIO(r.stdout)))) == {k: v for k, v in out[0].items() if k != "evidence"}  # fmt: skip
    labels = tmp_path / "labels.csv"
    labels.write_text(r.stdout)
    pred = tmp_path / "pred.csv"  # a perfect "prediction": the manual labels themselves
    with pred.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["VolumeName", *FINDINGS])
        w.writerows([[x["AccessionNo"], *[x[f] for f in FINDINGS]] for x in rows])
    r = CliRunner().invoke(app, ["zeroshot", "eval", "--pred", str(pred), "--truth", str(labels), "--bootstrap", "0", "-f", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert next(x for x in json.loads(r.stdout) if x["finding"] == "MACRO")["auroc"] > 0.85
    r = CliRunner().invoke(app, ["generate-report", "label", str(sub), "--uncertain", "maybe"])
    assert r.exit_code == 2 and "uncertain" in r.stderr

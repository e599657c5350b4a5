"""`ctvl zeroshot` / `zeroshot eval` / `finetune probe` end to end, checked against independent computations."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ctvl_cli.cli.app import app


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from ctvl_cli.phantom import write_phantoms

    d = tmp_path_factory.mktemp("zs")
    write_phantoms(d, n=8, seed=11)
    (d / "labels.txt").write_text("# two CT-RATE findings\nLung nodule\n\nPleural effusion\n")
    return d


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _manual_probs(
    scans: list[Path], prompts_pos: list[list[str]], prompts_neg: list[list[str]]
) -> np.ndarray:
    """CT-CLIP's protocol computed directly with the model (no ctvl scoring code)."""
    import torch

    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.models.factory import create_model_and_transforms

    model, pre, tok, _ = create_model_and_transforms("ctvl-tiny-test")
    with torch.no_grad():
        img = torch.cat([model.encode_image(pre(load_volume(s)).unsqueeze(0)) for s in scans])
        img = torch.nn.functional.normalize(img, dim=-1)

        def cls(texts):
            e = torch.nn.functional.normalize(model.encode_text(**tok(texts)), dim=-1).mean(0)
            return torch.nn.functional.normalize(e, dim=0)

        out = np.zeros((len(scans), len(prompts_pos)))
        for k, (p, n) in enumerate(zip(prompts_pos, prompts_neg)):
            logits = model.logit_scale() * img @ torch.stack([cls(p), cls(n)]).T
            out[:, k] = torch.softmax(logits, dim=1)[:, 0].numpy()
    return out


def test_zeroshot_matches_ctclip_protocol_and_reuses_cache(runner, phantoms, tmp_path):
    cache = tmp_path / "c.h5"
    args = ["zeroshot", str(phantoms), "--labels", str(phantoms / "labels.txt"), "--model", "ctvl-tiny-test"]
    r = runner.invoke(app, [*args, "--cache", str(cache), "-f", "csv"])
    assert r.exit_code == 0, r.stderr
    rows = _csv(r.stdout)
    assert [k for k in rows[0]] == ["scan", "Lung nodule", "Pleural effusion", "source"]
    assert len(rows) == 8
    got = np.array([[float(x["Lung nodule"]), float(x["Pleural effusion"])] for x in rows])
    scans = [Path(x["source"]) for x in rows]
    want = _manual_probs(
        scans,
        [["Lung nodule is present."], ["Pleural effusion is present."]],
        [["Lung nodule is not present."], ["Pleural effusion is not present."]],
    )
    np.testing.assert_allclose(got, want, atol=2e-6)
    # the explicit `score` subcommand and a cache-only run give the same table
    r2 = runner.invoke(
        app,
        [
            "zeroshot",
            "score",
            "--cache",
            str(cache),
            "--labels",
            str(phantoms / "labels.txt"),
            "--model",
            "ctvl-tiny-test",
            "-f",
            "csv",
        ],
    )
    assert r2.exit_code == 0, r2.stderr
    assert sorted(_csv(r2.stdout), key=lambda x: x["scan"]) == sorted(rows, key=lambda x: x["scan"])
    # the second run needs no model: prompts and logit scale are cached, torch is never imported
    code = (
        "import sys; from ctvl_cli.api.zeroshot import zeroshot;"
        f"r = zeroshot(cache={str(cache)!r}, labels={str(phantoms / 'labels.txt')!r}, model='ctvl-tiny-test');"
        "assert r.probs.shape == (8, 2); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ensemble_averages_embeddings(runner, phantoms, tmp_path):
    from ctvl_cli.zeroshot.labels import templates

    r = runner.invoke(
        app,
        [
            "zeroshot",
            str(phantoms / "phantom_11_000000.nii.gz"),
            "--labels",
            str(phantoms / "labels.txt"),
            "--model",
            "ctvl-tiny-test",
            "-t",
            "ensemble",
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)[0]
    pos, neg = templates("ensemble")
    want = _manual_probs(
        [phantoms / "phantom_11_000000.nii.gz"],
        [[t.replace("{}", f) for t in pos] for f in ("Lung nodule", "Pleural effusion")],
        [[t.replace("{}", f) for t in neg] for f in ("Lung nodule", "Pleural effusion")],
    )
    assert abs(got["Lung nodule"] - want[0, 0]) < 2e-6 and abs(got["Pleural effusion"] - want[0, 1]) < 2e-6


def test_threshold_calls_bad_input_and_usage(runner, phantoms, tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    args = ["zeroshot", str(phantoms / "phantom_11_000001.nii.gz"), str(bad), "--model", "ctvl-tiny-test"]
    r = runner.invoke(
        app, [*args, "--labels", str(phantoms / "labels.txt"), "--threshold", "0.5", "-f", "jsonl"]
    )
    assert r.exit_code == 1
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["Lung nodule (call)"] == int(rows[0]["Lung nodule"] >= 0.5)
    assert "bad.nii.gz" in r.stderr
    r = runner.invoke(app, ["zeroshot", str(phantoms), "--model", "ctvl-tiny-test"])
    assert r.exit_code == 2 and "--labels" in r.stderr
    r = runner.invoke(
        app,
        [
            "zeroshot",
            str(phantoms),
            "--labels",
            str(phantoms / "labels.txt"),
            "--model",
            "ctvl-tiny-test",
            "--threshold",
            "nope",
        ],
    )
    assert r.exit_code == 2 and "threshold" in r.stderr
    r = runner.invoke(
        app,
        [
            "zeroshot",
            str(phantoms),
            "--labels",
            str(phantoms / "labels.txt"),
            "--model",
            "ctvl-tiny-test",
            "-t",
            "nosuch",
        ],
    )
    assert r.exit_code == 2 and "template set" in r.stderr


def test_eval_metrics_missing_extra_and_thresholds(runner, phantoms, tmp_path):
    from ctvl_cli.metrics import auroc, closest_to_corner_threshold

    rng = np.random.default_rng(0)
    names = [f"s{i}" for i in range(40)]
    y = rng.integers(0, 2, (40, 2))
    y[:2] = [[0, 0], [1, 1]]
    s = np.clip(y * 0.3 + rng.random((40, 2)) * 0.7, 0, 1)
    pred = tmp_path / "pred.csv"
    with pred.open("w") as fh:
        fh.write("scan,A,B,source\n")
        for n, row in zip(names[:-1], s[:-1]):  # s39 has no prediction
            fh.write(f"{n},{row[0]},{row[1]},/x/{n}.nii.gz\n")
        fh.write("extra,0.5,0.5,/x/extra.nii.gz\n")
    truth = tmp_path / "truth.csv"
    with truth.open("w") as fh:
        fh.write("VolumeName,A,B\n")
        for n, row in zip(names, y):
            fh.write(f"{n}.nii.gz,{row[0]},{row[1]}\n")
    thr = tmp_path / "thr.json"
    r = runner.invoke(
        app,
        [
            "zeroshot",
            "eval",
            "--pred",
            str(pred),
            "--truth",
            str(truth),
            "--bootstrap",
            "200",
            "--thresholds-out",
            str(thr),
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert (
        "1 labelled scan(s) have no prediction" in r.stderr
        and "1 predicted scan(s) have no label" in r.stderr
    )
    rows = {x["finding"]: x for x in json.loads(r.stdout)}
    for k, f in enumerate("AB"):
        assert rows[f]["n"] == 39
        assert abs(rows[f]["auroc"] - auroc(y[:39, k], s[:39, k])) < 1e-4
        t = closest_to_corner_threshold(y[:39, k], s[:39, k])
        assert abs(rows[f]["threshold"] - t) < 1e-6
        acc = ((s[:39, k] >= t) == y[:39, k]).mean()
        assert abs(rows[f]["accuracy"] - acc) < 1e-4
        lo, hi = map(float, rows[f]["auroc_ci"].split("-"))
        assert lo <= rows[f]["auroc"] <= hi
    assert abs(rows["MACRO"]["auroc"] - (rows["A"]["auroc"] + rows["B"]["auroc"]) / 2) < 1e-4
    assert set(json.loads(thr.read_text())["thresholds"]) == {"A", "B"}


def test_probe_head_applies_in_zeroshot(runner, phantoms, tmp_path):
    from ctvl_cli.train.probe import load_head

    cache = tmp_path / "c.h5"
    r = runner.invoke(
        app, ["embed", str(phantoms), "--model", "ctvl-tiny-test", "--cache", str(cache), "-f", "json"]
    )
    assert r.exit_code == 0, r.stderr
    head = tmp_path / "head.safetensors"
    r = runner.invoke(
        app,
        [
            "finetune",
            "probe",
            "--labels",
            str(phantoms / "labels.csv"),
            "--cache",
            str(cache),
            "--model",
            "ctvl-tiny-test",
            "--out",
            str(head),
            "--val-fraction",
            "0.25",
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert len(json.loads(r.stdout)) == 18 and "2 val scans" in r.stderr
    h = load_head(head)
    assert h.weight.shape == (18, 32) and h.model_name == "ctvl-tiny-test"
    r = runner.invoke(
        app,
        ["zeroshot", "--cache", str(cache), "--head", str(head), "--model", "ctvl-tiny-test", "-f", "csv"],
    )
    assert r.exit_code == 0, r.stderr
    rows = _csv(r.stdout)
    assert len(rows) == 8 and list(rows[0])[1:19] == h.findings
    # same numbers as applying the head by hand to the cached embeddings
    from ctvl_cli.api.zeroshot import cached_images, resolve_key

    _, _, key = resolve_key("ctvl-tiny-test")
    _, emb, recs = cached_images(cache, key)
    by_name = dict(zip([x["name"] for x in recs], h.predict(emb)))
    for row in rows:
        np.testing.assert_allclose([float(row[f]) for f in h.findings], by_name[row["scan"]], atol=2e-6)
    # a head only applies to the model it was trained on
    other = tmp_path / "other.json"
    card = json.loads((Path(__file__).parents[1] / "ctvl_cli/registry/cards/ctvl-tiny-test.json").read_text())
    card["weights"] = [{"kind": "init", "seed": 1}]
    other.write_text(json.dumps(card))
    r = runner.invoke(app, ["zeroshot", "--cache", str(cache), "--head", str(head), "--model", str(other)])
    assert r.exit_code == 2 and "was trained on embeddings of ctvl-tiny-test" in r.stderr

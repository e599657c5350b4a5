"""Per-organ embeddings end to end: `embed --regions auto|MASK_DIR`, `zeroshot --region`, `retrieve --region`."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

from ctvl_cli.cache import EmbeddingCache
from ctvl_cli.cli.app import app
from ctvl_cli.segment.labels import organ_labels

MODEL = ["--model", "ctvl-tiny-test"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Two phantoms, and a MASK_DIR built from the phantoms' own organ maps (heart and lungs known exactly)."""
    from ctvl_cli.phantom.generate import generate_phantom, save_nifti
    from ctvl_cli.segment.io import write_json, write_nifti

    d = tmp_path_factory.mktemp("reg")
    (d / "scans").mkdir()
    (d / "masks").mkdir()
    lab = organ_labels()
    for i in range(2):
        # a coarse grid (4 mm, 5 mm slices) keeps the segmentation cheap; the model grid (12 mm) is coarser still
        c = generate_phantom(seed=21, index=i, shape=(96, 96, 64), spacing=(4.0, 4.0, 5.0))
        save_nifti(d / "scans" / f"p{i}.nii.gz", c.volume, c.affine)
        m = np.zeros(c.volume.shape, np.uint8)
        m[c.organ_mask("body")] = lab["body"]
        m[c.organ_mask("heart")] = lab["heart"]
        m[c.organ_mask("lung_left")] = lab["lung_left"]
        m[c.organ_mask("lung_right")] = lab["lung_right"]
        write_nifti(d / "masks" / f"p{i}_organs.nii.gz", m, c.affine)
        names = ("lung_left", "lung_right", "heart", "body")
        write_json(d / "masks" / f"p{i}_labels.json", {"labels": {str(lab[o]): o for o in names}})
    return d


def _entries(cache, kind):
    with EmbeddingCache.open(cache) as c:
        (key,) = c.models()
        return c.get(key, kind=kind)


def test_embed_regions_auto_matches_an_independent_computation(runner, scans, tmp_path, monkeypatch):
    from ctvl_cli.segment import totalseg

    monkeypatch.setattr(totalseg, "unavailable_reason", lambda: "disabled in this test")  # auto = builtin
    cache = tmp_path / "e.h5"
    r = runner.invoke(
        app, ["embed", str(scans / "scans"), "--cache", str(cache), *MODEL, "--regions", "auto", "-f", "json"]
    )
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    kinds = {x["kind"] for x in rows}
    assert {
        "image",
        "region:lung",
        "region:lung_left",
        "region:lung_right",
        "region:trachea",
        "region:body",
    } <= kinds
    assert all(x["status"] == "embedded" for x in rows)
    ids, emb, recs = _entries(cache, "region:lung")
    assert sorted(r_["name"] for r_ in recs) == ["p0", "p1"]
    # independent: reference (full-volume F.interpolate) preprocessing of image and mask, box-average onto the
    # feature grid, weighted mean, the model's projection
    from ctvl_cli.io.volume import Volume, load_volume
    from ctvl_cli.models.factory import create_model_and_transforms
    from ctvl_cli.preprocess.engine import reference_preprocess
    from ctvl_cli.segment.builtin import segment_builtin

    model, _, _, card = create_model_and_transforms("ctvl-tiny-test")
    vol = load_volume(scans / "scans" / "p0.nii.gz")
    lung = segment_builtin(vol).mask("lung").astype(np.float32)
    spec = card.preprocess
    import dataclasses

    mspec = dataclasses.replace(spec, hu_window=(0.0, 1.0), output_range=(0.0, 1.0), pad_value=0.0)
    with torch.no_grad():
        x = reference_preprocess(vol, spec)[None]
        w = reference_preprocess(Volume(array=lung, affine=vol.affine, source="m"), mspec)[None]
        f = model.image_feature_map(x)
        g = torch.nn.functional.adaptive_avg_pool3d(w, f.shape[2:])[0, 0]
        pooled = (f[0] * g).sum(dim=(1, 2, 3)) / g.sum()
        want = torch.nn.functional.normalize(model.visual_proj(pooled), dim=-1).numpy()
    got = emb[[r_["name"] for r_ in recs].index("p0")]
    assert np.allclose(got, want, atol=1e-4), np.abs(got - want).max()
    _, img, _ = _entries(cache, "image")
    assert not np.allclose(got, img[0], atol=1e-3)
    # rerun: everything cached, nothing recomputed
    r2 = runner.invoke(
        app, ["embed", str(scans / "scans"), "--cache", str(cache), *MODEL, "--regions", "auto", "-f", "json"]
    )
    assert r2.exit_code == 0, r2.stderr
    assert {x["status"] for x in json.loads(r2.stdout)} == {"cached"}


def test_mask_dir_heart_retrieve_and_zeroshot_region(runner, scans, tmp_path):
    cache = tmp_path / "e.h5"
    masks = str(scans / "masks")
    r = runner.invoke(
        app, ["embed", str(scans / "scans"), "--cache", str(cache), *MODEL, "--regions", masks, "-f", "json"]
    )
    assert r.exit_code == 0, r.stderr
    kinds = {x["kind"] for x in json.loads(r.stdout)}
    assert {"region:heart", "region:lung", "region:body"} <= kinds and "region:trachea" not in kinds
    idx = tmp_path / "idx"
    b = runner.invoke(
        app,
        [
            "retrieve",
            "build",
            "--cache",
            str(cache),
            "--index",
            str(idx),
            *MODEL,
            "--region",
            "heart",
            "-f",
            "json",
        ],
    )
    assert b.exit_code == 0, b.stderr
    assert json.loads(b.stdout)["vectors"] == 2
    assert json.loads((idx / "index.json").read_text())["region"] == "heart"
    q = runner.invoke(
        app,
        ["retrieve", "query", "--index", str(idx), "--image", str(scans / "scans" / "p1.nii.gz"), "--regions", masks,
         "-k", "2", "--cache", str(cache), "-f", "json"],
    )  # fmt: skip
    assert q.exit_code == 0, q.stderr
    hits = json.loads(q.stdout)
    assert hits[0]["scan"] == "p1" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    # a whole-scan index cannot be extended with heart embeddings
    w = runner.invoke(app, ["retrieve", "build", "--cache", str(cache), "--index", str(idx), *MODEL, "--add"])
    assert w.exit_code == 2 and "heart" in w.stderr
    labels = tmp_path / "l.txt"
    labels.write_text("Cardiomegaly\n")
    z = runner.invoke(
        app,
        [
            "zeroshot",
            "--cache",
            str(cache),
            "--labels",
            str(labels),
            *MODEL,
            "--region",
            "heart",
            "-f",
            "csv",
        ],
    )
    assert z.exit_code == 0, z.stderr
    heart = {row["scan"]: float(row["Cardiomegaly"]) for row in csv.DictReader(io.StringIO(z.stdout))}
    z2 = runner.invoke(app, ["zeroshot", "--cache", str(cache), "--labels", str(labels), *MODEL, "-f", "csv"])
    whole = {row["scan"]: float(row["Cardiomegaly"]) for row in csv.DictReader(io.StringIO(z2.stdout))}
    assert sorted(heart) == sorted(whole) == ["p0", "p1"]
    assert heart != whole


def test_zeroshot_region_with_inputs_and_missing_masks(runner, scans, tmp_path):
    labels = tmp_path / "l.txt"
    labels.write_text("Pleural effusion\n")
    r = runner.invoke(
        app,
        ["zeroshot", str(scans / "scans"), "--labels", str(labels), *MODEL, "--region", "lung", "-f", "json"],
    )
    assert r.exit_code == 0, r.stderr
    assert sorted(x["scan"] for x in json.loads(r.stdout)) == ["p0", "p1"]
    bad = runner.invoke(
        app,
        ["zeroshot", "--cache", str(tmp_path / "x.h5"), "--labels", str(labels), *MODEL, "--region", "liver"],
    )
    assert bad.exit_code == 2 and "unknown region 'liver'" in bad.stderr
    # a MASK_DIR without the mask of one scan: that scan's regions fail, the other is embedded, exit 1
    part = tmp_path / "masks"
    part.mkdir()
    for f in (scans / "masks").glob("p0_*"):
        (part / f.name).write_bytes(f.read_bytes())
    e = runner.invoke(
        app,
        [
            "embed",
            str(scans / "scans"),
            "--cache",
            str(tmp_path / "e.h5"),
            *MODEL,
            "--regions",
            str(part),
            "-f",
            "json",
        ],
    )
    assert e.exit_code == 1
    rows = json.loads(e.stdout)
    failed = [x for x in rows if x["status"] == "failed"]
    assert [x["name"] for x in failed] == ["p1:regions"] and "no mask for scan p1" in failed[0]["error"]
    assert any(x["name"] == "p0:heart" and x["status"] == "embedded" for x in rows)

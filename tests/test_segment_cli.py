"""`ctvl segment-organs` end to end through the CLI: files, label map, --split, --preview, volume tables, batch
failures, non-chest scans and the TotalSegmentator availability paths."""

from __future__ import annotations

import csv
import io
import json

import nibabel as nib
import numpy as np
import pytest

from ctvl_cli.cli.app import app
from ctvl_cli.segment.labels import organ_labels


@pytest.fixture(scope="module")
def phantom_scan(tmp_path_factory):
    from ctvl_cli.phantom.generate import generate_phantom, save_nifti

    d = tmp_path_factory.mktemp("seg_scans")
    c = generate_phantom(seed=11, index=2)
    save_nifti(d / "ph.nii.gz", c.volume, c.affine)
    return d / "ph.nii.gz"


def _no_totalseg(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a, **k: None if n == "totalsegmentator" else real(n, *a, **k)
    )


def test_segment_phantom_writes_all_files_and_consistent_volumes(runner, phantom_scan, tmp_path, monkeypatch):
    _no_totalseg(monkeypatch)
    out = tmp_path / "masks"
    r = runner.invoke(
        app, ["segment-organs", str(phantom_scan), "-o", str(out), "--split", "--preview", "--format", "json"]
    )
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    by = {x["organ"]: x for x in rows}
    assert {"lung_left", "lung_right", "trachea", "skeleton", "mediastinum", "body"} <= set(by)
    assert all(x["scan"] == "ph" and x["backend"] == "builtin" for x in rows)
    # auto fell back to builtin with a one-line warning naming how to get TotalSegmentator
    assert "TotalSegmentator not available" in r.stderr and "totalseg_download_weights" in r.stderr
    seg = nib.load(str(out / "ph_organs.nii.gz"))
    src = nib.load(str(phantom_scan))
    assert seg.shape == src.shape and np.allclose(seg.affine, src.affine)
    lab = np.asarray(seg.dataobj)
    lmap = json.loads((out / "ph_labels.json").read_text())
    assert lmap["backend"] == "builtin" and lmap["labels"][str(organ_labels()["lung_left"])] == "lung_left"
    ml = float(np.prod(src.header.get_zooms()[:3])) / 1000
    for organ in ("lung_left", "lung_right", "trachea"):
        n = int((lab == organ_labels()[organ]).sum())
        assert n > 0 and by[organ]["voxels"] == n and by[organ]["status"] == "found"
        assert by[organ]["volume_ml"] == pytest.approx(n * ml, abs=0.01)
        split = np.asarray(nib.load(str(out / f"ph_{organ}.nii.gz")).dataobj)
        assert ((split > 0) == (lab == organ_labels()[organ])).all()
    assert by["body"]["voxels"] == int((lab > 0).sum())  # the body organ is every labelled voxel
    png = (out / "ph_preview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import SimpleITK as sitk

    im = sitk.ReadImage(str(out / "ph_preview.png"))
    assert im.GetNumberOfComponentsPerPixel() == 3 and im.GetSize()[0] > 2 * im.GetSize()[1]


def test_organs_subset_and_csv(runner, phantom_scan, tmp_path, monkeypatch):
    _no_totalseg(monkeypatch)
    out = tmp_path / "m"
    r = runner.invoke(
        app,
        [
            "segment-organs",
            str(phantom_scan),
            "-o",
            str(out),
            "--organs",
            "lung",
            "--backend",
            "builtin",
            "-f",
            "csv",
        ],
    )
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["organ"] for x in rows] == ["lung_left", "lung_right"]
    assert float(rows[0]["volume_ml"]) > 500
    lab = np.asarray(nib.load(str(out / "ph_organs.nii.gz")).dataobj)
    assert set(np.unique(lab)) == {0, organ_labels()["lung_left"], organ_labels()["lung_right"]}
    assert "TotalSegmentator" not in r.stderr  # explicit builtin: no fallback note
    bad = runner.invoke(app, ["segment-organs", str(phantom_scan), "-o", str(out), "--organs", "liver"])
    assert bad.exit_code == 2 and "unknown organ 'liver'" in bad.stderr and bad.stdout == ""


def test_bad_file_in_batch_others_finish_exit_1(runner, phantom_scan, tmp_path, monkeypatch):
    _no_totalseg(monkeypatch)
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b not a nifti")
    out = tmp_path / "m"
    r = runner.invoke(app, ["segment-organs", str(bad), str(phantom_scan), "-o", str(out), "-f", "json"])
    assert r.exit_code == 1
    rows = json.loads(r.stdout)
    failed = [x for x in rows if x["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["scan"] == "broken" and "broken.nii.gz" in failed[0]["error"]
    assert (out / "ph_organs.nii.gz").exists() and not (out / "broken_organs.nii.gz").exists()
    assert "1 of 2 inputs failed" in r.stderr


@pytest.mark.integration
def test_non_chest_scan_gives_empty_organs_and_warnings(runner, shared, tmp_path, monkeypatch):
    _no_totalseg(monkeypatch)
    scan = shared("data", "totalseg_examples", "example_ct.nii.gz")
    r = runner.invoke(app, ["segment-organs", str(scan), "-o", str(tmp_path), "-f", "json"])
    assert r.exit_code == 0, r.stderr
    by = {x["organ"]: x for x in json.loads(r.stdout)}
    assert by["trachea"]["status"] == "empty" and by["trachea"]["volume_ml"] == 0
    assert by["mediastinum"]["status"] == "empty"
    assert "ctvl: warning: example_ct: trachea not found" in r.stderr


def test_explicit_totalsegmentator_without_package_exits_2(runner, phantom_scan, tmp_path, monkeypatch):
    _no_totalseg(monkeypatch)
    r = runner.invoke(
        app, ["segment-organs", str(phantom_scan), "-o", str(tmp_path), "--backend", "totalsegmentator"]
    )
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert "TotalSegmentator package is not installed" in r.stderr and "hint:" in r.stderr


def test_totalsegmentator_weights_lookup(tmp_path, monkeypatch):
    """Package present (a stub on sys.path) but no weights -> says where it looked; weights present -> usable."""
    from ctvl_cli.segment import totalseg

    pkg = tmp_path / "site" / "totalsegmentator"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path / "tshome"))
    assert (
        totalseg.unavailable_reason()
        == f"no TotalSegmentator weights in {tmp_path / 'tshome' / 'nnunet' / 'results'}"
    )
    w = tmp_path / "w"
    (w / "Dataset291_TotalSegmentator_part1_organs_1559subj").mkdir(parents=True)
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(w))
    assert totalseg.unavailable_reason() is None
    from ctvl_cli.api.segment import choose_backend

    assert choose_backend("auto") == ("totalsegmentator", None)


_TS_STUB = """
import json, os
import nibabel as nib
import numpy as np


def totalsegmentator(input, output=None, ml=False, nr_thr_resamp=1, nr_thr_saving=6, fast=False,
                     task="total", roi_subset=None, statistics=False, body_seg=False, force_split=False,
                     output_type="nifti", quiet=False, skip_saving=False, device="gpu", license_number=None,
                     fastest=False, robust_crop=False, save_probabilities=None):
    # test double of TotalSegmentator's python API (signature as in totalsegmentator/python_api.py): records
    # the call and answers with TotalSegmentator's real output for this scan, written in LAS (another axis
    # order than the RAS input, as TotalSegmentator does for some inputs)
    with open(os.environ["TS_STUB_LOG"], "a") as fh:
        fh.write(json.dumps({"input": str(input), "output": output, "ml": ml, "fast": fast, "task": task,
                             "device": device}) + "\\n")
    ref = nib.load(os.environ["TS_STUB_REF"])
    a = np.asarray(ref.dataobj)[::-1]
    aff = ref.affine.copy()
    aff[:3, 3] += aff[:3, 0] * (a.shape[0] - 1)
    aff[:3, 0] *= -1
    return nib.Nifti1Image(a.astype(np.uint8), aff)
"""


@pytest.mark.integration
def test_totalsegmentator_backend_end_to_end(runner, shared, tmp_path, monkeypatch):
    """With the package and weights present, `--backend totalsegmentator` (and auto) call TotalSegmentator's python
    API as documented (multilabel, task total, --fast passed through) and map its 117 classes onto ctvl's organs
    on the input grid. TotalSegmentator itself cannot run here (no weights offline): a test double of its API
    returns its real output for the scan (`example_seg.nii.gz`, TotalSegmentator v2 on `example_ct_sm`)."""
    import sys

    from ctvl_cli.segment.totalseg import map_total_labels

    scan = shared("data", "totalseg_examples", "example_ct_sm.nii.gz")
    ref = shared("data", "totalseg_examples", "example_seg.nii.gz")
    pkg = tmp_path / "site" / "totalsegmentator"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "python_api.py").write_text(_TS_STUB)
    for m in ("totalsegmentator", "totalsegmentator.python_api"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (tmp_path / "w" / "Dataset291_TotalSegmentator_part1_organs_1559subj").mkdir(parents=True)
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(tmp_path / "w"))
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("TS_STUB_LOG", str(log))
    monkeypatch.setenv("TS_STUB_REF", str(ref))

    out = tmp_path / "masks"
    r = runner.invoke(app, ["segment-organs", str(scan), "-o", str(out), "--organs", "lung,aorta,skeleton", "--fast", "-f", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    call = json.loads(log.read_text())
    assert call["ml"] is True and call["task"] == "total" and call["fast"] is True and call["output"] is None
    assert call["input"] == str(scan) and call["device"] == "cpu"
    rows = {x["organ"]: x for x in json.loads(r.stdout)}
    assert {x["backend"] for x in rows.values()} == {"totalsegmentator"}
    seg = np.asarray(nib.load(str(out / "example_ct_sm_organs.nii.gz")).dataobj)
    want = map_total_labels(np.asarray(nib.load(str(ref)).dataobj))
    lab = organ_labels()
    for organ in ("lung_left", "lung_right", "aorta", "skeleton"):
        n = int((want == lab[organ]).sum())
        assert n > 0 and ((seg == lab[organ]) == (want == lab[organ])).all(), organ
        assert rows[organ]["voxels"] == n
    assert not np.isin(seg, [lab["trachea"], lab["mediastinum"]]).any()  # not asked for
    # auto picks TotalSegmentator when it is usable
    r = runner.invoke(app, ["segment-organs", str(scan), "-o", str(tmp_path / "auto"), "--organs", "lung", "-f", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert {x["backend"] for x in json.loads(r.stdout)} == {"totalsegmentator"}
    assert json.loads(log.read_text().splitlines()[-1])["fast"] is False

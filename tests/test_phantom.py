"""Procedural chest-CT phantom: determinism, per-finding rendering, files, reports and the CLI."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from ctvl_cli.phantom import finding_names, generate_phantom, write_phantoms

CTRATE_COLUMNS = [
    "Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
    "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis",
    "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion", "Mosaic attenuation pattern",
    "Peribronchial thickening", "Consolidation", "Bronchiectasis", "Interlobular septal thickening",
]  # fmt: skip

# Three disjoint groups cover all 18 findings; one normal case.
GROUPS = [
    ["Lung nodule", "Pleural effusion", "Emphysema", "Cardiomegaly", "Arterial wall calcification", "Hiatal hernia"],
    ["Lung opacity", "Atelectasis", "Pericardial effusion", "Coronary artery wall calcification", "Bronchiectasis",
     "Medical material"],
    ["Consolidation", "Mosaic attenuation pattern", "Interlobular septal thickening", "Pulmonary fibrotic sequela",
     "Peribronchial thickening", "Lymphadenopathy"],
]  # fmt: skip


@pytest.fixture(scope="module")
def cases():
    out = {}
    for i, group in enumerate(GROUPS):
        case = generate_phantom(seed=11, index=i, findings=group)
        out.update(dict.fromkeys(group, case))
    out["normal"] = generate_phantom(seed=11, index=7, findings=[])
    return out


def _dilate(m: np.ndarray, r: int = 1) -> np.ndarray:
    out = m.copy()
    for _ in range(r):
        grown = out.copy()
        for ax in range(3):
            grown |= np.roll(out, 1, ax) | np.roll(out, -1, ax)
        out = grown
    return out


def _width_mm(mask: np.ndarray, spacing: float) -> float:
    """Largest left-right extent (mm) of a mask over axial slices."""
    best = 0
    for k in range(mask.shape[2]):
        cols = np.flatnonzero(mask[:, :, k].any(axis=1))
        if cols.size:
            best = max(best, cols[-1] - cols[0] + 1)
    return best * spacing


# --------------------------------------------------------------------------- determinism and grid


def test_deterministic_per_seed_and_index():
    a = generate_phantom(seed=5, index=3)
    b = generate_phantom(seed=5, index=3)
    assert np.array_equal(a.volume, b.volume)
    assert np.array_equal(a.affine, b.affine)
    assert a.report_text == b.report_text and a.labels == b.labels
    c = generate_phantom(seed=6, index=3)
    d = generate_phantom(seed=5, index=4)
    for other in (c, d):
        assert a.volume.shape != other.volume.shape or not np.array_equal(a.volume, other.volume)


def test_grid_affine_and_tissue_hu(cases):
    case = cases["normal"]
    vol, aff = case.volume, case.affine
    assert vol.dtype == np.int16 and vol.ndim == 3
    assert not np.allclose(aff, np.eye(4))
    assert aff[0, 0] < 0 and aff[1, 1] < 0 and aff[2, 2] > 0  # LPS-ordered axes in a RAS affine
    assert np.allclose(np.abs(np.diag(aff)[:3]), case.spacing)
    med = {
        o: float(np.median(vol[case.organ_mask(o)]))
        for o in ("lungs", "body_fat", "muscle", "vertebra", "liver")
    }
    assert -900 < med["lungs"] < -780
    assert -140 < med["body_fat"] < -60
    assert 20 < med["muscle"] < 70
    assert med["vertebra"] > 150
    assert 30 < med["liver"] < 150
    outside = vol[case.organ_map == 0]
    assert np.median(outside) < -950
    # body outline encloses the lungs; heart, aorta, trachea, ribs and spine are present
    for organ in ("heart", "aorta", "airway", "rib", "vertebra", "pulmonary_vessel", "sternum", "esophagus"):
        assert case.organ_mask(organ).sum() > 20, organ


def test_spacing_ranges_full_resolution_header_only():
    # The full-resolution grid is sampled before any painting; check ranges on a small override of the shape.
    for i in range(3):
        case = generate_phantom(
            seed=2, index=i, resolution="full", shape=(48, 48, 24), findings=[], noise=False
        )
        sx, sy, sz = case.spacing
        assert 0.6 <= sx <= 0.9 and sx == sy
        assert 1.0 <= sz <= 5.0
    w = generate_phantom(seed=2, index=0, findings=[])
    assert 2.0 <= w.spacing[0] <= 3.2 and 2.0 <= w.spacing[2] <= 3.0
    assert w.volume.shape[:2] == (128, 128)


# --------------------------------------------------------------------------- per-finding rendering


def test_absent_findings_leave_no_voxels(cases):
    assert not cases["normal"].finding_map.any()
    for name in finding_names():
        case = cases[name]
        for other in finding_names():
            present = case.finding_mask(other).any()
            assert present == bool(case.labels[other]), (name, other)


@pytest.mark.parametrize(
    "name,organs,lo,hi",
    [
        ("Lung nodule", ("lungs_with_vessels",), -300, 120),
        ("Lung opacity", ("lungs",), -720, -300),
        ("Emphysema", ("lungs",), -1030, -925),
        ("Pulmonary fibrotic sequela", ("lungs_with_vessels",), -450, 80),
        ("Interlobular septal thickening", ("lungs",), -560, 40),
        ("Consolidation", ("lungs_with_vessels", "airway_wall"), -120, 90),
        ("Atelectasis", ("lungs_with_vessels",), -300, 90),
        ("Pleural effusion", ("pleural_cavity",), -25, 45),
        ("Pericardial effusion", ("pericardial_space",), -25, 45),
        ("Lymphadenopathy", ("lymph_node",), -20, 90),
        ("Peribronchial thickening", ("airway_wall",), -350, 90),
        ("Medical material", ("device",), 150, 3100),
    ],
)
def test_finding_inside_organ_with_expected_hu(cases, name, organs, lo, hi):
    case = cases[name]
    m = case.finding_mask(name)
    assert m.sum() >= 3
    assert case.organ_mask(*organs)[m].all()
    assert lo <= float(np.median(case.volume[m])) <= hi


def test_nodule_is_dense_and_surrounded_by_lung(cases):
    case = cases["Lung nodule"]
    m = case.finding_mask("Lung nodule")
    shell = _dilate(m, 2) & ~_dilate(m, 1)
    assert np.median(case.volume[m]) > np.median(case.volume[shell]) + 300
    assert case.organ_mask("lungs_with_vessels", "pleural_cavity")[shell].mean() > 0.8


def test_pleural_effusion_is_dependent(cases):
    case = cases["Pleural effusion"]
    eff = case.finding_mask("Pleural effusion")
    lungs = case.organ_mask("lungs")
    j_eff = np.nonzero(eff)[1].mean()
    j_lung = np.nonzero(lungs)[1].mean()
    # axis j points posterior (LPS): the fluid lies behind the aerated lung
    assert j_eff > j_lung + 10.0 / case.spacing[1]


def test_cardiomegaly_raises_cardiothoracic_ratio(cases):
    def ctr(case):
        return _width_mm(case.organ_mask("heart"), case.spacing[0]) / _width_mm(
            case.organ_mask("lungs", "pleural_cavity", "heart", "mediastinal_fat"), case.spacing[0]
        )

    big, normal = ctr(cases["Cardiomegaly"]), ctr(cases["normal"])
    assert big > 0.5 > normal
    assert (
        cases["Cardiomegaly"].finding_mask("Cardiomegaly").sum()
        == cases["Cardiomegaly"].organ_mask("heart").sum()
    )


def test_calcifications_sit_on_vessel_walls(cases):
    for name, vessel in (
        ("Arterial wall calcification", "aorta"),
        ("Coronary artery wall calcification", "heart"),
    ):
        case = cases[name]
        m = case.finding_mask(name)
        assert case.volume[m].max() > 300
        near = _dilate(case.organ_mask(vessel, "coronary_artery"), 3)
        assert near[m].mean() > 0.9, name


def test_mosaic_has_lucent_and_dense_lobules(cases):
    case = cases["Mosaic attenuation pattern"]
    hu = case.volume[case.finding_mask("Mosaic attenuation pattern")]
    assert np.quantile(hu, 0.1) < -880 and np.quantile(hu, 0.9) > -780


def test_airway_findings(cases):
    case = cases["Bronchiectasis"]
    hu = case.volume[case.finding_mask("Bronchiectasis")]
    assert (hu < -800).sum() > 5 and (hu > -300).sum() > 5  # dilated air lumen and its wall
    assert case.organ_mask("airway", "airway_wall")[case.finding_mask("Bronchiectasis")].all()


def test_hiatal_hernia_air_fluid_above_diaphragm(cases):
    case = cases["Hiatal hernia"]
    m = case.finding_mask("Hiatal hernia")
    hu = case.volume[m]
    assert (hu < -800).any() and ((hu > -50) & (hu < 90)).sum() > 10
    lung_slices = np.flatnonzero(case.organ_mask("lungs").any(axis=(0, 1)))
    hern_slices = np.flatnonzero(m.any(axis=(0, 1)))
    assert np.isin(hern_slices, lung_slices).mean() > 0.5


def test_lymph_nodes_in_mediastinum(cases):
    case = cases["Lymphadenopathy"]
    i_nodes = np.nonzero(case.finding_mask("Lymphadenopathy"))[0].mean()
    i_right = np.nonzero(case.organ_mask("lung_right"))[0].mean()
    i_left = np.nonzero(case.organ_mask("lung_left"))[0].mean()
    assert min(i_right, i_left) < i_nodes < max(i_right, i_left)


# --------------------------------------------------------------------------- reports and labels

KEYWORDS = {
    "Medical material": r"\b(catheters?|pacemaker|sternotomy|devices?|medical material)\b",
    "Arterial wall calcification": r"aort\w*\W.*calcif|calcif\w*\W.*aort|atherosclero|arterial wall calcif",
    "Cardiomegaly": r"cardiomegaly|heart is enlarged|cardiac enlargement|enlarged heart",
    "Pericardial effusion": r"pericardial (effusion|fluid)",
    "Coronary artery wall calcification": r"coronary",
    "Hiatal hernia": r"hiatal hernia|hiatus",
    "Lymphadenopathy": r"lymph",
    "Emphysema": r"emphysem",
    "Atelectasis": r"atelecta",
    "Lung nodule": r"nodul|nodule",
    "Lung opacity": r"ground-glass|opacit",
    "Pulmonary fibrotic sequela": r"fibrot|sequela",
    "Pleural effusion": r"pleural (effusion|fluid)",
    "Mosaic attenuation pattern": r"mosaic",
    "Peribronchial thickening": r"peribronchial|bronchial wall thickening",
    "Consolidation": r"consolidat",
    "Bronchiectasis": r"bronchiect|bronchial dilatation",
    "Interlobular septal thickening": r"\bsepta",
}
NEGATION = re.compile(r"\b(no|not|without|absent|neither|nor)\b", re.IGNORECASE)


def _check_report(text: str, labels: dict[str, int]) -> None:
    sentences = [s for s in re.split(r"(?<=[.;:])\s+|•", text) if s.strip()]
    for name, pat in KEYWORDS.items():
        hits = [s for s in sentences if re.search(pat, s, re.IGNORECASE)]
        affirmed = [s for s in hits if not NEGATION.search(s)]
        if labels[name]:
            assert affirmed, (name, text)
        else:
            assert not affirmed, (name, affirmed)


def test_reports_mention_positives_and_negate_absent(cases):
    for case in cases.values():
        _check_report(case.findings_text, case.labels)
        _check_report(case.impression_text, case.labels)
    assert (
        "normal" in cases["normal"].impression_text.lower()
        or "no acute" in cases["normal"].impression_text.lower()
    )


def test_report_wording_varies_over_many_label_sets():
    from ctvl_cli.phantom.reports import write_report

    rng = np.random.default_rng(0)
    details = {
        "Lung nodule": {"side": "left", "lobe": "upper lobe", "size_mm": 8, "count": 2},
        "Pleural effusion": {"side": "bilateral", "depth_mm": {"right": 20, "left": 14}},
        "Medical material": {"devices": ["pacemaker", "sternotomy wires"]},
        "Lymphadenopathy": {"stations": ["subcarinal"], "size_mm": 14},
    }
    texts = set()
    for _ in range(200):
        labels = {n: int(rng.random() < 0.3) for n in finding_names()}
        f, imp = write_report(labels, details, rng)
        _check_report(f, labels)
        _check_report(imp, labels)
        assert "{" not in f + imp
        texts.add(f)
    assert len(texts) > 150


def test_default_finding_rates_follow_ctrate(shared):
    from ctvl_cli.phantom.generate import _choose_findings

    path = shared("data", "ct_rate_reports", "ctrate_manual_labels_train.csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys())[2:] == CTRATE_COLUMNS == finding_names()
    truth = {c: np.mean([int(r[c]) for r in rows]) for c in CTRATE_COLUMNS}
    rng = np.random.default_rng(1)
    draws = [_choose_findings(rng, None, None) for _ in range(3000)]
    for c in CTRATE_COLUMNS:
        assert abs(np.mean([c in d for d in draws]) - truth[c]) < 0.035, c
    assert all(not _choose_findings(rng, None, 0.0) for _ in range(50))


# --------------------------------------------------------------------------- files and CLI


def test_write_phantoms_files_and_sharding(tmp_path):
    import nibabel as nib

    s = write_phantoms(tmp_path / "a", n=2, seed=4)
    shard = write_phantoms(tmp_path / "b", n=1, seed=4, start=1)
    name = s["cases"][1]["name"]
    assert shard["cases"][0]["name"] == name
    img = nib.load(str(tmp_path / "a" / f"{name}.nii.gz"))
    ref = generate_phantom(seed=4, index=1)
    assert np.array_equal(np.asarray(img.dataobj), ref.volume)
    assert np.allclose(img.affine, ref.affine)
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert np.array_equal(np.asarray(nib.load(str(tmp_path / "b" / f"{name}.nii.gz")).dataobj), ref.volume)
    with open(tmp_path / "a" / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["VolumeName", *CTRATE_COLUMNS]
    assert rows[2][1:] == [str(ref.labels[c]) for c in CTRATE_COLUMNS]
    with open(tmp_path / "a" / "reports.csv", newline="") as f:
        rep = list(csv.DictReader(f))
    assert list(rep[0]) == ["VolumeName", "Findings_EN", "Impressions_EN", "report_text"]
    assert rep[1]["Findings_EN"] == ref.findings_text and rep[1]["Impressions_EN"] == ref.impression_text
    with open(tmp_path / "a" / "pairs.csv", newline="") as f:
        pairs = list(csv.DictReader(f))
    assert pairs[1] == {"image": f"{name}.nii.gz", "text": ref.report_text}


def test_cli_phantom(tmp_path, runner):
    import typer

    from ctvl_cli.cli.commands.phantom import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps `phantom` a named subcommand
        pass

    out = tmp_path / "ph"
    res = runner.invoke(app, ["phantom", str(out), "-n", "2", "--seed", "3", "--findings", "lung nodule,Pleural effusion",
                              "--format", "csv"])  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "name,shape,spacing,contrast,findings" and len(lines) == 3
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        assert {c for c in CTRATE_COLUMNS if r[c] == "1"} == {"Lung nodule", "Pleural effusion"}
    assert len(list(out.glob("*.nii.gz"))) == 2
    bad = runner.invoke(app, ["phantom", str(tmp_path / "x"), "-n", "1", "--findings", "Lung tumour"])
    assert bad.exit_code == 2
    assert "unknown finding" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_cli_phantom_masks_mark_each_findings_voxels(tmp_path, runner):
    """--masks: masks/<scan> on the scan's grid holds exactly the forced findings' voxels, valued by their
    labels.csv column, and those voxels carry the finding's HU in the scan."""
    import nibabel as nib

    from ctvl_cli.cli.app import app
    from ctvl_cli.phantom.findings import finding_id

    out = tmp_path / "ph"
    res = runner.invoke(app, ["phantom", str(out), "-n", "2", "--seed", "4", "--masks", "-f", "json",
                              "--findings", "Lung nodule,Medical material"])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    names = [c["name"] for c in json.loads(res.stdout)]
    cols = list(CTRATE_COLUMNS)
    for name in names:
        img, msk = nib.load(out / f"{name}.nii.gz"), nib.load(out / "masks" / f"{name}.nii.gz")
        assert msk.shape == img.shape and np.allclose(msk.affine, img.affine)
        m, hu = np.asarray(msk.dataobj), np.asarray(img.dataobj)
        nod, dev = cols.index("Lung nodule") + 1, cols.index("Medical material") + 1
        assert (nod, dev) == (finding_id("Lung nodule"), finding_id("Medical material"))
        assert set(np.unique(m).tolist()) == {0, nod, dev}
        assert -150 < hu[m == nod].mean() < 150  # soft-tissue nodules (noise), lung around them is ~-850
        assert hu[m == dev].mean() > 250  # metal / catheter density
    runner.invoke(app, ["phantom", str(tmp_path / "plain"), "-n", "1", "--seed", "4"])
    assert not (tmp_path / "plain" / "masks").exists()

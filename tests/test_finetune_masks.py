"""`ctvl finetune clip --masks`: dense per-cell targets from label maps (ctvl phantom --masks), through the image's
own geometry, moved with the spatial augmentation, trained through the CLI, resumed exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import cli_json, run_history

BASE = ["--model", "ctvl-tiny-test", "-b", "4", "--no-text-aug", "-j", "0", "--device", "cpu", "-f", "json"]


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    from ctvl_cli.phantom import write_phantoms

    d = tmp_path_factory.mktemp("phm")
    write_phantoms(d, n=8, seed=7, masks=True)
    return d


def test_targets_follow_the_scans_geometry(tmp_path):
    """A label map on a scanner (LPS-ordered) grid lands on the feature-grid cells where the same voxels of the
    scan land after preprocessing; value k fills channel k-1 only; a scan without a mask is unknown (255)."""
    import torch
    import torch.nn.functional as F

    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.phantom.generate import save_nifti
    from ctvl_cli.preprocess.engine import preprocess
    from ctvl_cli.registry import get_card
    from ctvl_cli.train.masks import UNKNOWN, _targets_one

    spec = get_card("ctvl-tiny-test").preprocess
    affine = np.array([[-6.0, 0, 0, 120], [0, -6.0, 0, 100], [0, 0, 8.0, -300], [0, 0, 0, 1]])
    hu = np.full((50, 60, 40), -1000, np.int16)
    lab = np.zeros(hu.shape, np.uint8)
    hu[4:16, 40:55, 3:10] = 1000  # one block near a corner: label 3
    lab[4:16, 40:55, 3:10] = 3
    save_nifti(tmp_path / "s.nii.gz", hu, affine)
    save_nifti(tmp_path / "m.nii.gz", lab, affine)
    grid = (4, 4, 4)
    t = _targets_one(str(tmp_path / "m.nii.gz"), spec, 5, grid)
    img = (
        preprocess(load_volume(tmp_path / "s.nii.gz"), spec) + 1
    ) / 2  # the block's fraction per input voxel
    where = F.adaptive_max_pool3d(img[None], grid)[0, 0] >= 0.5
    assert t.shape == (5, *grid) and t.dtype == torch.uint8
    assert 0 < int(t[2].sum()) < 64 and torch.equal(t[2].bool(), where)
    assert int(t[[0, 1, 3, 4]].sum()) == 0
    assert (_targets_one(None, spec, 5, grid) == UNKNOWN).all()
    bad = tmp_path / "bad.nii.gz"
    save_nifti(bad, (lab * 3).astype(np.uint8), affine)  # value 9 > 5 labels
    from ctvl_cli.errors import InputError

    with pytest.raises(InputError, match=r"outside 1\.\.5"):
        _targets_one(str(bad), spec, 5, grid)


def test_targets_move_with_the_augmentation():
    """The same affine moves image content and targets alike (shift by one cell, 90-degree rotation)."""
    import torch
    import torch.nn.functional as F

    from ctvl_cli.train.augment import apply
    from ctvl_cli.train.masks import augment_targets

    spacing, shape, grid = (5.0, 5.0, 5.0), (16, 16, 16), (4, 4, 4)
    x = torch.full((1, *shape), -1.0)
    x[0, 4:8, 0:4, 8:12] = 1.0  # fills cell (1, 0, 2)
    t = torch.zeros((2, *grid), dtype=torch.uint8)
    t[1, 1, 0, 2] = 1
    for shift, rot in (
        ([20.0, 0.0, 0.0], [0, 0, 0]),
        ([0.0, 20.0, -20.0], [0, 0, 0]),
        ([0, 0, 0], [90.0, 0, 0]),
    ):
        xm = apply(x, spacing, -1.0, shift, rot, 1.0)
        where = F.adaptive_max_pool3d((xm[None] + 1) / 2, grid)[0, 0] >= 0.5
        tm = augment_targets(t, spacing, shape, shift, rot, 1.0)
        assert int(tm[1].sum()) == 1 and torch.equal(tm[1].bool(), where), (shift, rot)
        assert int(tm[0].sum()) == 0
    unknown = torch.full((2, *grid), 255, dtype=torch.uint8)
    assert torch.equal(augment_targets(unknown, spacing, shape, [20.0, 0, 0], [0, 0, 0], 1.0), unknown)
    # a one-cell finding (a nodule) moved by part of a cell, rotated a little, scaled: still exactly one cell,
    # the nearest to where it went (trilinear + a threshold lost it: 0.45 x 0.45 of it lands in any one cell)
    for shift, rot, scale in (([9.0, 11.0, 0.0], [0, 0, 0], 1.0), ([-9.0, 0.0, 8.0], [4.0, -3.0, 2.0], 1.05)):
        tm = augment_targets(t, spacing, shape, shift, rot, scale)
        assert int(tm[1].sum()) == 1 and int(tm[0].sum()) == 0, (shift, rot, scale)
    tm = augment_targets(t, spacing, shape, [9.0, 11.0, 0.0], [0, 0, 0], 1.0)
    assert tm[1, 1, 1, 2] == 1  # +0.45 cell rounds back to cell 1 on axis 0; +0.55 moves to cell 1 on axis 1


def test_clip_with_masks_trains_the_dense_head(runner, masked, tmp_path):
    """--masks through the CLI: the per-cell loss is reported and falls; its head is kept for resume but never
    exported; targets are computed once per run; refused without --labels or without matching mask files."""
    import torch
    from safetensors.torch import load_file

    from ctvl_cli.cli.app import app

    run = tmp_path / "run"
    args = ["finetune", "clip", "--pairs", str(masked / "pairs.csv"), "--out", str(run), *BASE]
    args += ["--labels", str(masked / "labels.csv"), "--label-weight", "0", "--masks", str(masked / "masks")]
    r = runner.invoke(app, [*args, "--mask-weight", "5", "--epochs", "12", "--lr", "3e-3", "--warmup", "0",
                            "--stop-after", "20"])  # fmt: skip
    assert r.exit_code == 130 and "feature-grid targets of 8 mask(s)" in r.stderr, r.stderr
    r = runner.invoke(app, ["finetune", "clip", "--out", str(run), "--resume", "-f", "json", "-j", "0"])
    out = cli_json(r)
    assert out["steps"] == 24 and "feature-grid targets" not in r.stderr  # reused from the run directory
    h = run_history(run)
    assert out["last_label_loss"] is None and h[-1]["mask_loss"] == pytest.approx(
        out["last_mask_loss"], abs=1e-4
    )
    assert h[-1]["mask_loss"] < 0.6 * h[0]["mask_loss"], (h[0], h[-1])
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["mask_head"]["weight"].shape[:2] == (18, 32)  # 18 labels x tiny-clip's 32 feature channels
    assert not any("head" in k or "dense" in k for k in load_file(str(run / "model.safetensors")))
    targets = torch.load(run / "mask_targets.pt", weights_only=True)["targets"]
    assert targets.shape[:2] == (8, 18) and set(targets.unique().tolist()) <= {0, 1}
    # the scans' labels are the targets' any-cell presence, finding by finding
    from ctvl_cli.train.data import read_pairs
    from ctvl_cli.zeroshot.truth import read_label_table, scan_key

    _, table = read_label_table(masked / "labels.csv")
    truth = np.array([table[scan_key(p.id)] for p in read_pairs(masked / "pairs.csv")], dtype=float)
    present = targets.flatten(2).amax(-1).numpy()
    assert (present == truth).mean() > 0.95

    r = runner.invoke(app, [*args[:5], str(tmp_path / "r2"), *BASE, "--masks", str(masked / "masks")])
    assert r.exit_code == 2 and "--labels" in r.stderr, r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(app, [*args[:5], str(tmp_path / "r3"), *BASE, "--labels", str(masked / "labels.csv"),
                            "--masks", str(empty)])  # fmt: skip
    assert r.exit_code == 2 and "empty" in r.stderr and "no mask named like" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_resume_with_masks_and_augmentation_is_exact(runner, masked, tmp_path):
    from safetensors.torch import load_file

    from ctvl_cli.cli.app import app

    common = ["--pairs", str(masked / "pairs.csv"), *BASE, "--epochs", "3", "--save-every", "1",
              "--labels", str(masked / "labels.csv"), "--masks", str(masked / "masks"), "--mask-weight", "2",
              "--aug-shift", "10", "--aug-rotate", "5"]  # fmt: skip
    cli_json(runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "a"), *common]))
    r = runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "b"), *common, "--stop-after", "3"])
    assert r.exit_code == 130
    out = cli_json(
        runner.invoke(app, ["finetune", "clip", "--out", str(tmp_path / "b"), "--resume", "-f", "json"])
    )
    assert out["resumed_from_step"] == 3 and out["steps"] == 6
    wa, wb = (
        load_file(str(tmp_path / "a" / "model.safetensors")),
        load_file(str(tmp_path / "b" / "model.safetensors")),
    )
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


def _stopped_and_resumed(runner, args: list[str], run, stop: int):
    """Run ``finetune clip`` ``args`` into ``run``, stopped after ``stop`` steps (exit 130), then resumed to its
    end: (the resumed run's JSON result, its checkpoint, its metrics history)."""
    import torch

    from ctvl_cli.cli.app import app

    r = runner.invoke(app, [*args, "--out", str(run), "--stop-after", str(stop)])
    assert r.exit_code == 130, r.stderr
    out = cli_json(
        runner.invoke(app, ["finetune", "clip", "--out", str(run), "--resume", "-f", "json", "-j", "0"])
    )
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    return out, state, run_history(run)


def test_mask_stage_puts_the_dense_loss_on_a_finer_map(runner, masked, tmp_path):
    """--mask-stage 1: targets and the dense head live on tiny-clip's second stage (8^3, 16 channels, not the last
    map's 4^3 x 32); with --mask-pos-weight the per-cell loss still falls; the run resumes with both settings from
    its checkpoint; a stage the tower does not have is a one-line usage error."""
    import torch

    from ctvl_cli.cli.app import app

    run = tmp_path / "run"
    args = ["finetune", "clip", "--pairs", str(masked / "pairs.csv"), *BASE, "--labels", str(masked / "labels.csv"),
            "--label-weight", "0", "--masks", str(masked / "masks")]  # fmt: skip
    out, state, h = _stopped_and_resumed(
        runner, [*args, "--mask-stage", "1", "--mask-pos-weight", "4", "--mask-weight", "5", "--epochs", "12",
                 "--lr", "3e-3", "--warmup", "0"], run, stop=12)  # fmt: skip
    assert out["steps"] == 24
    assert state["config"]["mask_stage"] == 1 and state["config"]["mask_pos_weight"] == 4
    assert state["mask_head"]["weight"].shape[:2] == (18, 16)
    targets = torch.load(run / "mask_targets.pt", weights_only=True)["targets"]
    assert targets.shape == (8, 18, 8, 8, 8)
    assert h[-1]["mask_loss"] < 0.8 * h[0]["mask_loss"], (h[0], h[-1])  # weighted positives: it starts higher

    r = runner.invoke(app, [*args, "--out", str(tmp_path / "bad"), "--mask-stage", "3"])
    assert r.exit_code == 2 and "--mask-stage 3" in r.stderr and "3 image stage(s)" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_mask_labels_restrict_the_dense_loss(runner, masked, tmp_path):
    """--mask-labels: the dense head predicts only the named columns, in the order given (their targets, not the
    others'); the setting survives a resume; an unknown column or --mask-labels without --masks is a one-line
    usage error."""

    from ctvl_cli.cli.app import app
    from ctvl_cli.train.masks import label_index

    run = tmp_path / "run"
    args = ["finetune", "clip", "--pairs", str(masked / "pairs.csv"), *BASE, "--labels", str(masked / "labels.csv"),
            "--label-weight", "0"]  # fmt: skip
    keep = ["Lung nodule", "Cardiomegaly"]
    out, state, h = _stopped_and_resumed(
        runner, [*args, "--masks", str(masked / "masks"), "--mask-labels", ",".join(keep), "--mask-weight", "5",
                 "--epochs", "6", "--lr", "3e-3", "--warmup", "0"], run, stop=6)  # fmt: skip
    assert out["steps"] == 12
    assert state["config"]["mask_labels"] == keep
    assert state["mask_head"]["weight"].shape[0] == 2
    assert h[-1]["mask_loss"] < 0.8 * h[0]["mask_loss"], (h[0], h[-1])

    assert label_index(["a", "b", "c", "d"], ["d", "b"]) == [3, 1]

    r = runner.invoke(app, [*args, "--out", str(tmp_path / "bad"), "--masks", str(masked / "masks"),
                            "--mask-labels", "Lung nodule,Nodules"])  # fmt: skip
    assert r.exit_code == 2 and "'Nodules' is not a column of --labels" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "bad2"), "--mask-labels", "Lung nodule"])
    assert r.exit_code == 2 and "--mask-labels needs --masks" in r.stderr, r.stderr


def test_stage_maps_and_weighted_dense_loss():
    """small-clip: the map of a chosen stage comes from the same pass as the embedding (which does not change);
    the last stage map is image_feature_map; positive cells weigh pos_weight, unknown cells (255) nothing."""
    import torch

    from ctvl_cli.models.small import SmallClip
    from ctvl_cli.train.masks import dense_loss

    torch.manual_seed(0)
    m = SmallClip(embed_dim=16, widths=(4, 8, 8, 16), vocab_size=10, norm="gn", first_res=False).eval()
    x = torch.randn(2, 1, 32, 32, 32)
    with torch.no_grad():
        maps = m.image_stage_maps(x)
        e1, p1, f1 = m.encode_image_pooled(x, with_map=True, map_stage=1)
        e2, p2, f2 = m.encode_image_pooled(x, with_map=True)
    assert [tuple(f.shape[1:]) for f in maps] == [(4, 16, 16, 16), (8, 8, 8, 8), (8, 4, 4, 4), (16, 2, 2, 2)]
    assert (
        torch.allclose(f1, maps[1])
        and torch.allclose(f2, maps[-1])
        and torch.allclose(maps[-1], m.image_feature_map(x))
    )
    assert torch.allclose(e1, e2, atol=1e-6) and torch.allclose(p1, p2, atol=1e-6)

    logits = torch.zeros(1, 1, 2, 2, 2)
    t = torch.zeros(1, 1, 2, 2, 2, dtype=torch.uint8)
    t[0, 0, 0, 0, 0] = 1
    t[0, 0, 1, 1, 1] = 255
    ln2 = float(torch.log(torch.tensor(2.0)))
    assert float(dense_loss(logits, t)) == pytest.approx(ln2)  # 7 known cells, each log 2
    assert float(dense_loss(logits, t, pos_weight=8.0)) == pytest.approx(ln2 * (8 + 6) / 7)

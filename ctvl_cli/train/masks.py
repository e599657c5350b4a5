"""Dense auxiliary targets for ``finetune clip --masks DIR`` (training only).

A mask is a label map on the scan's own grid (same shape and affine, e.g. ``ctvl phantom --masks``): voxel value k
marks the k-th column of ``--labels`` (1-based), 0 is background. Each scan's map goes through exactly the image's
geometry (``api.regions.mask_weights``: orientation, spacing, crop, pad) and is then reduced to the model's feature
grid: a cell's target for label k is 1 when some preprocessed voxel in it is at least half inside label k. A 1x1x1
convolution on the image feature map (never exported with the model) is trained on those targets with BCE, which
tells the tower *where* each finding is, not only whether the scan has it.

Targets are computed once per run (in DataLoader workers) and kept in ``mask_targets.pt`` in the run directory,
keyed by the mask files, the preprocessing and the grid, so a resumed run reuses them. Scans without a mask file
get unknown targets (255) and contribute nothing to the loss. With ``--aug-*`` the targets move with the scan: the
same affine is applied to the feature-grid targets (nearest cell at grid resolution).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from ctvl_cli.errors import InputError, UsageError

UNKNOWN = 255
FILE = "mask_targets.pt"


def mask_paths(mask_dir: str | Path, image_ids: Sequence[str]) -> list[str | None]:
    """The mask of each training scan: ``DIR/<image file name>`` (None where absent); at least one must exist."""
    d = Path(mask_dir)
    if not d.is_dir():
        raise InputError("mask folder not found", path=d, hint="a folder of label maps named like the scans")
    out = [str(d / i) if (d / i).is_file() else None for i in image_ids]
    if not any(out):
        raise InputError(
            f"no mask named like a training scan (e.g. {image_ids[0]})",
            path=d,
            hint="masks/<scan file name>, as `ctvl phantom --masks` writes",
        )
    return out


def _targets_one(path: str | None, spec, n_labels: int, grid):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ctvl_cli.api.regions import mask_weights
    from ctvl_cli.io.volume import load_volume

    t = torch.full((n_labels, *grid), UNKNOWN, dtype=torch.uint8)
    if path is None:
        return t
    if torch.utils.data.get_worker_info() is not None:
        torch.set_num_threads(1)
    vol = load_volume(path)
    lab = np.asarray(vol.array)
    if lab.dtype.kind == "f" and not np.array_equal(lab, np.round(lab)):
        raise InputError("mask holds non-integer values", path=path, hint="a label map: 0 and label numbers")
    ids = [int(v) for v in np.unique(lab) if v != 0]
    bad = [v for v in ids if not 1 <= v <= n_labels]
    if bad:
        raise InputError(
            f"label value {bad[0]} outside 1..{n_labels}",
            path=path,
            hint="value k marks the k-th label column of --labels",
        )
    t.zero_()
    if ids:
        w = mask_weights(vol, spec, [lab == v for v in ids])  # (R, *shape): fraction of each input voxel
        on = F.adaptive_max_pool3d(w[:, None], tuple(grid))[:, 0] >= 0.5
        for j, v in enumerate(ids):
            t[v - 1] = on[j].to(torch.uint8)
    return t


def targets_key(paths: Sequence[str | None], spec, grid, n_labels: int) -> str:
    """The input store's key (preprocessing + each mask file's path and signature), plus which scans have no mask,
    the grid and the label count."""
    from ctvl_cli.train.inputs import store_key

    absent = [i for i, p in enumerate(paths) if p is None]
    inner = store_key([p for p in paths if p is not None], spec)
    return hashlib.sha256(f"{inner}|{absent}|{tuple(grid)}|{n_labels}".encode()).hexdigest()[:16]


def load_targets(
    paths: Sequence[str | None],
    spec,
    n_labels: int,
    grid,
    *,
    run_dir: Path,
    workers: int = 0,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
):
    """``(n, n_labels, *grid)`` uint8 targets (0/1, 255 unknown), from ``run_dir/mask_targets.pt`` when its key
    matches, else computed (and saved there)."""
    import torch

    key = targets_key(paths, spec, grid, n_labels)
    f = Path(run_dir) / FILE
    if f.is_file():
        saved = torch.load(f, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return saved["targets"]
    if on_start:
        on_start(sum(p is not None for p in paths))

    class _DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            return _targets_one(paths[i], spec, n_labels, grid)

    out = []
    loader = torch.utils.data.DataLoader(_DS(), batch_size=1, num_workers=workers, collate_fn=lambda b: b[0])
    for t in loader:
        out.append(t)
        if on_progress:
            on_progress(len(out), len(paths))
    targets = torch.stack(out)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".part")
    torch.save({"key": key, "targets": targets}, tmp)
    tmp.replace(f)
    return targets


def feature_grid(model, shape, stage: int = -1) -> tuple[int, tuple[int, int, int]]:
    """(channels, spatial size) of the model's feature map after image stage ``stage`` (-1: the last) for inputs
    of ``shape`` (one dry run on zeros)."""
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        p = next(model.parameters())
        maps = model.image_stage_maps(torch.zeros((1, 1, *shape), device=p.device, dtype=p.dtype))
        if not -len(maps) <= stage < len(maps):
            raise UsageError(
                f"--mask-stage {stage}: {type(model).__name__} has {len(maps)} image stage(s)",
                hint=f"a stage in 0..{len(maps) - 1}, or -1 for the last",
            )
        f = maps[stage]
    model.train(was)
    return int(f.shape[1]), tuple(int(s) for s in f.shape[2:])  # type: ignore[return-value]


def run_targets(
    mask_dir, model, spec, pairs, n_labels: int, *, out: Path, dist, workers: int, emit, stage: int = -1
):
    """``finetune clip``'s targets: (targets of the training pairs on the model's feature grid, the feature map's
    width for the mask head). Rank 0 computes (or reuses) them; under torchrun the other ranks then read its file."""
    import torch

    paths = mask_paths(mask_dir, [p.id for p in pairs])
    channels, grid = feature_grid(model, spec.shape, stage)

    def load(w: int):
        return load_targets(
            paths, spec, n_labels, grid, run_dir=out, workers=w,
            on_start=lambda n: emit({"event": "prepare_masks", "todo": n, "store": str(out / FILE)}),
            on_progress=lambda n, t: emit({"event": "prepare_step", "n": n, "of": t}),
        )  # fmt: skip

    targets = load(workers) if dist.rank == 0 else None
    if dist.world > 1:
        torch.distributed.barrier()
        if dist.rank != 0:
            targets = load(0)  # a key match: rank 0 wrote the file
    return targets, channels


def label_index(names: Sequence[str], keep: Sequence[str]) -> list[int]:
    """The positions of the label columns ``keep`` (``--mask-labels``) among ``names``, in that order."""
    missing = [k for k in keep if k not in names]
    if missing:
        raise UsageError(
            f"--mask-labels: {missing[0]!r} is not a column of --labels",
            hint="one of: " + ", ".join(names),
        )
    if len(set(keep)) != len(keep):
        raise UsageError("--mask-labels: a column is named twice", hint="name each column once")
    return [list(names).index(k) for k in keep]


def augment_targets(t, spacing, shape, shift, rot, scale):
    """Move feature-grid targets ``(L, *grid)`` with the scan's augmentation (the same affine at grid resolution,
    nearest cell: trilinear + a threshold would drop a one-cell finding, a nodule, whenever the shift is not a whole
    number of cells, and then tell the head "absent" where the image shows it)."""
    from ctvl_cli.train import augment

    if bool((t == UNKNOWN).any()):
        return t  # a scan without a mask: nothing to move
    grid = t.shape[1:]
    cell = [s * n / g for s, n, g in zip(spacing, shape, grid)]  # the same extent in mm as the input
    return augment.apply(t.float(), cell, 0.0, shift, rot, scale, mode="nearest").round().to(t.dtype)


def dense_loss(logits, targets, pos_weight: float = 1.0):
    """Mean BCE over the known cells of ``logits`` ``(B, L, *grid)`` against uint8 targets (255 = unknown); the
    positive cells weigh ``pos_weight`` (a small finding fills ~0.1 % of the cells of a fine grid: unweighted, the
    loss is minimised by predicting "absent" everywhere)."""
    import torch
    import torch.nn.functional as F

    known = targets != UNKNOWN
    if not known.any():
        return logits.sum() * 0
    pw = None if pos_weight == 1.0 else torch.tensor(pos_weight, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits[known].float(), targets[known].float(), pos_weight=pw)

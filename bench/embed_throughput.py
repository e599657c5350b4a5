"""Throughput of `ctvl embed` vs an "official-style" per-file baseline, same model, same files, same run.

Baseline (how the CT-CLIP and Merlin repos embed a folder): for each file, one process, batch 1:
nibabel load -> ``get_fdata()`` (float64) -> numpy reorientation -> torch -> full-volume
``F.interpolate(trilinear)`` -> clip/scale -> crop/pad -> model forward.

ctvl: ``ctvl embed DIR --workers 2 --batch-size 2`` as a subprocess (start-up, model build, hashing and cache
writes included). The baseline also runs in a fresh subprocess, so both pay Python/torch start-up.

Files: real-size chest CT (512x512x300 int16 .nii.gz) made from the real scan in ../shared (see _common.py).
Model: the ``tiny-clip`` architecture with a realistic working resolution (RAS, 1.5x1.5x3 mm, 224x224x160, the
Merlin grid), random init, written as a local model card — both sides run exactly this card.

Usage: python bench/embed_throughput.py [--n 6] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import machine, real_size_volumes

CARD = {
    "name": "bench-tiny-224",
    "description": "tiny-clip at the Merlin working grid, random init (benchmark only)",
    "architecture": {
        "arch": "tiny-clip",
        "params": {"embed_dim": 32, "widths": [8, 16, 32], "vocab_size": 196},
    },
    "embed_dim": 32,
    "preprocess": {
        "orientation": "RAS",
        "spacing": [1.5, 1.5, 3.0],
        "shape": [224, 224, 160],
        "hu_window": [-1000, 1000],
        "output_range": [-1, 1],
        "clip_before_resample": True,
        "pad_value": -1.0,
    },
    "weights": [{"kind": "init", "seed": 0}],
    "license": "Apache-2.0",
}


def baseline(paths: list[Path], card_dir: Path) -> tuple[float, dict]:
    import nibabel as nib
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ctvl_cli.models.factory import create_model_and_transforms

    t0 = time.perf_counter()
    model, _, _, card = create_model_and_transforms(str(card_dir))
    spec = card.preprocess
    out = {}
    for p in paths:
        img = nib.load(str(p))
        data = img.get_fdata()  # float64, as the official loaders do
        ornt = nib.orientations.ornt_transform(
            nib.orientations.io_orientation(img.affine),
            nib.orientations.axcodes2ornt(tuple(spec.orientation)),
        )
        data = nib.orientations.apply_orientation(data, ornt)
        aff = img.affine @ nib.orientations.inv_ornt_aff(ornt, img.shape)
        zooms = np.linalg.norm(aff[:3, :3], axis=0)
        data = np.clip(data, *spec.hu_window)
        t = torch.tensor(data, dtype=torch.float32)[None, None]
        size = [int(n * z / s) for n, z, s in zip(t.shape[2:], zooms, spec.spacing)]
        t = F.interpolate(t, size=size, mode="trilinear", align_corners=False)[0, 0]
        lo, hi = spec.hu_window
        a, b = spec.output_range
        t = (t - lo) / (hi - lo) * (b - a) + a
        sl = [
            slice(max((n - s) // 2, 0), max((n - s) // 2, 0) + min(n, s)) for n, s in zip(t.shape, spec.shape)
        ]
        t = t[tuple(sl)]
        pads = []
        for ax in (2, 1, 0):
            d = spec.shape[ax] - t.shape[ax]
            pads += [d // 2, d - d // 2]
        t = F.pad(t, pads, value=spec.pad_value)
        with torch.no_grad():
            out[p.name] = model.encode_image(t[None, None])[0].numpy()
    return time.perf_counter() - t0, out


def run_baseline(paths: list[Path], card_dir: Path, out: Path) -> float:
    """The baseline in a fresh process, like ctvl: both pay Python/torch start-up."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import numpy as np, json\nfrom pathlib import Path\nfrom embed_throughput import baseline\n"
        f"_, emb = baseline([Path(p) for p in {[str(p) for p in paths]!r}], Path({str(card_dir)!r}))\n"
        f"np.savez({str(out)!r}, **emb)\n"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def run_ctvl(data_dir: Path, card_dir: Path, cache: Path, workers: int, batch: int) -> float:
    cmd = [
        sys.executable,
        "-m",
        "ctvl_cli",
        "embed",
        str(data_dir),
        "--model",
        str(card_dir),
        "--cache",
        str(cache),
        "--workers",
        str(workers),
        "--batch-size",
        str(batch),
        "--format",
        "json",
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"ctvl embed failed: {r.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=2)
    args = ap.parse_args()
    paths = real_size_volumes(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        card_dir = tmp / "card"
        card_dir.mkdir()
        (card_dir / "ctvl_card.json").write_text(json.dumps(CARD))
        data_dir = tmp / "data"
        data_dir.mkdir()
        for p in paths:
            (data_dir / p.name).symlink_to(p)
        t_base = run_baseline(paths, card_dir, tmp / "base.npz")
        emb_base = dict(np.load(tmp / "base.npz"))
        t_ctvl = run_ctvl(data_dir, card_dir, tmp / "c.h5", args.workers, args.batch_size)
        from ctvl_cli.cache import EmbeddingCache

        with EmbeddingCache.open(tmp / "c.h5") as c:
            (key,) = c.models()
            _, emb, recs = c.get(key)
        diff = max(float(np.abs(emb[i] - emb_base[Path(r["source"]).name]).max()) for i, r in enumerate(recs))
    n = len(paths)
    rows = [
        (
            "official-style baseline (nibabel get_fdata + F.interpolate, batch 1, 1 process)",
            t_base,
            n / t_base,
            1.0,
        ),
        (
            f"ctvl embed --workers {args.workers} --batch-size {args.batch_size}",
            t_ctvl,
            n / t_ctvl,
            t_base / t_ctvl,
        ),
    ]
    print(f"machine: {machine()}")
    print(f"inputs: {n} x 512x512x300 int16 .nii.gz; model: tiny-clip @ RAS 1.5x1.5x3 mm, 224x224x160")
    print(f"max |embedding(ctvl) - embedding(baseline)|: {diff:.2e}")
    print("| method | seconds | volumes/s | ratio vs baseline |")
    print("|---|---|---|---|")
    for name, t, vps, ratio in rows:
        print(f"| {name} | {t:.1f} | {vps:.3f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()

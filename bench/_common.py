"""Shared helpers for the benchmarks: machine description and real-size test volumes."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "_data"
SHARED = Path(os.environ.get("CTVL_SHARED", BENCH.parent.parent / "shared"))


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} CPU cores, {mem:.0f} GiB RAM, {gpu}, torch {torch.__version__}"


def write_section(tag: str, title: str, cmd: str, text: str) -> None:
    """Replace the ``<!-- tag:begin -->`` ... ``<!-- tag:end -->`` section of bench/RESULTS.md (append it under
    ``## title`` the first time), stamped with the command and today's date."""
    import re
    import time

    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    res = BENCH / "RESULTS.md"
    body = res.read_text()
    section = f"{begin}\n`{cmd}` ({time.strftime('%Y-%m-%d')}):\n\n{text}\n{end}"
    if begin in body:
        body = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, body, flags=re.S)
    else:
        body += f"\n## {title}\n\n" + section + "\n"
    res.write_text(body)


def real_size_volumes(n: int, *, depth: int = 300) -> list[Path]:
    """n real-size chest CT NIfTI files (512x512x``depth`` int16, .nii.gz), made once from the real scan
    ../shared/data/lung_pet_ct_dx/A0001_chest_ct.nii.gz: resampled along z to ``depth`` slices (1.07 mm), with
    per-file noise and a per-file shift so that every file is distinct (content hashes and gzip work differ)."""
    import nibabel as nib
    import numpy as np
    import torch
    import torch.nn.functional as F

    DATA.mkdir(parents=True, exist_ok=True)
    paths = [DATA / f"realsize_{i:03d}.nii.gz" for i in range(n)]
    todo = [p for p in paths if not p.exists()]
    if not todo:
        return paths
    src = nib.load(str(SHARED / "data" / "lung_pet_ct_dx" / "A0001_chest_ct.nii.gz"))
    arr = np.asanyarray(src.dataobj).astype(np.float32)
    zoom = src.header.get_zooms()
    t = torch.from_numpy(arr)[None, None]
    big = F.interpolate(t, size=(arr.shape[0], arr.shape[1], depth), mode="trilinear", align_corners=False)[
        0, 0
    ].numpy()
    affine = src.affine.copy()
    affine[:3, 2] *= arr.shape[2] / depth
    for p in todo:
        i = int(p.stem.split("_")[1].split(".")[0])
        rng = np.random.default_rng(i)
        vol = np.roll(big, shift=int(rng.integers(-8, 8)), axis=0) + rng.normal(0, 8, big.shape).astype(
            np.float32
        )
        img = nib.Nifti1Image(np.clip(vol, -1024, 3071).astype(np.int16), affine)
        img.header.set_zooms((zoom[0], zoom[1], zoom[2] * arr.shape[2] / depth))
        nib.save(img, str(p))
    return paths

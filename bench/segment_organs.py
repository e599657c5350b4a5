"""Dice of the builtin organ segmenter against reference masks, and seconds per scan.

References (../shared/data/totalseg_examples, TotalSegmentator outputs kept by its authors as regression files):
  - example_ct_sm.nii.gz (lung-base slab, 3 mm) vs example_seg.nii.gz, the "total" v2 map converted to ctvl organs
    with ctvl's own class mapping (lobes merged into lung_left / lung_right; vertebrae, ribs, costal cartilages ->
    skeleton; ...);
  - chest_cta_aorta_crop.nii.gz (contrast CTA crop, 1.5 mm) vs chest_cta_aorta_crop_mask_aorta.nii.gz.
Phantoms (`ctvl phantom`, seed 11, working resolution) vs the phantom's own organ map: lungs = lung tissue and
pulmonary vessels, trachea = airway lumen, skeleton = vertebrae, ribs and sternum.
Timing only (no masks): the two whole-thorax scans of ../shared/data/lung_pet_ct_dx.

    python bench/segment_organs.py [--phantoms 5] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, machine, write_section


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return float("nan") if s == 0 else 2.0 * float((a & b).sum()) / s


def _run(vol):
    from ctvl_cli.segment.builtin import segment_builtin

    t0 = time.perf_counter()
    seg = segment_builtin(vol)
    return seg, time.perf_counter() - t0


def rows_totalseg() -> list[dict]:
    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.segment.totalseg import map_total_labels

    d = SHARED / "data" / "totalseg_examples"
    out = []
    vol = load_volume(d / "example_ct_sm.nii.gz")
    ref = map_total_labels(load_volume(d / "example_seg.nii.gz").array)
    seg, secs = _run(vol)
    from ctvl_cli.segment.labels import Segmentation

    r = Segmentation(labels=ref, organs=[], backend="ref")
    for organ in ("lung", "lung_left", "lung_right", "skeleton", "aorta"):
        out.append(
            {
                "scan": "example_ct_sm (lung-base slab, 3 mm)",
                "organ": organ,
                "reference": "TotalSegmentator total v2",
                "dice": dice(seg.mask(organ), r.mask(organ)),
                "seconds": secs,
            }
        )
    vol = load_volume(d / "chest_cta_aorta_crop.nii.gz")
    ref_a = load_volume(d / "chest_cta_aorta_crop_mask_aorta.nii.gz").array > 0
    seg, secs = _run(vol)
    out.append(
        {
            "scan": "chest_cta_aorta_crop (CTA crop, 1.5 mm)",
            "organ": "aorta",
            "reference": "TotalSegmentator aorta",
            "dice": dice(seg.mask("aorta"), ref_a),
            "seconds": secs,
        }
    )
    return out


PHANTOM_REF = {
    "lung": ("lungs_with_vessels",),
    "lung_left": ("lung_left",),
    "lung_right": ("lung_right",),
    "trachea": ("airway",),
    "skeleton": ("bone",),
    "body": ("body",),
}


def rows_phantoms(n: int) -> list[dict]:
    from ctvl_cli.io.volume import Volume
    from ctvl_cli.phantom.generate import generate_phantom

    per: dict[str, list[float]] = {k: [] for k in PHANTOM_REF}
    secs = []
    for i in range(n):
        c = generate_phantom(seed=11, index=i)
        seg, s = _run(Volume(array=c.volume, affine=c.affine, source=f"phantom {i}"))
        secs.append(s)
        for organ, ref in PHANTOM_REF.items():
            per[organ].append(dice(seg.mask(organ), c.organ_mask(*ref)))
    return [
        {
            "scan": f"{n} phantoms (seed 11, ~2.5 mm)",
            "organ": organ,
            "reference": "phantom organ map",
            "dice": float(np.mean(v)),
            "min": float(np.min(v)),
            "seconds": float(np.mean(secs)),
        }
        for organ, v in per.items()
    ]


def rows_timing() -> list[dict]:
    from ctvl_cli.io.volume import load_volume

    out = []
    for name in ("A0001_chest_ct", "A0002_chest_ct"):
        vol = load_volume(SHARED / "data" / "lung_pet_ct_dx" / f"{name}.nii.gz")
        seg, secs = _run(vol)
        ml = float(np.prod(vol.spacing)) / 1000
        found = ", ".join(f"{o} {n * ml:.0f} mL" for o, n in seg.voxel_counts().items() if n and o != "body")
        out.append({"scan": f"{name} ({'x'.join(map(str, vol.shape))})", "organ": found, "seconds": secs})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phantoms", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="replace the section of bench/RESULTS.md")
    args = ap.parse_args()
    rows = rows_totalseg() + rows_phantoms(args.phantoms)
    lines = ["| scan | organ | reference | Dice | s/scan |", "|---|---|---|---|---|"]
    for r in rows:
        d = f"{r['dice']:.3f}" + (f" (min {r['min']:.3f})" if "min" in r else "")
        lines.append(f"| {r['scan']} | {r['organ']} | {r['reference']} | {d} | {r['seconds']:.1f} |")
    timing = rows_timing()
    lines += ["", "| scan (no reference masks) | organs found | s/scan |", "|---|---|---|"]
    lines += [f"| {r['scan']} | {r['organ']} | {r['seconds']:.1f} |" for r in timing]
    text = f"Machine: {machine()}.\n\n" + "\n".join(lines)
    print(text)
    if args.write:
        write_section(
            "segment-organs",
            "`ctvl segment-organs` builtin backend — `bench/segment_organs.py`",
            f"python bench/segment_organs.py --phantoms {args.phantoms}",
            text,
        )


if __name__ == "__main__":
    main()

"""Procedural chest-CT phantoms with known findings: one case in memory, or a folder of NIfTI + CSV files."""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctvl_cli.errors import InputError, UsageError
from ctvl_cli.phantom.anatomy import paint_anatomy, sample_anatomy
from ctvl_cli.phantom.canvas import Canvas, ids_of
from ctvl_cli.phantom.findings import finding_id, finding_names, finding_table, render_findings
from ctvl_cli.phantom.reports import write_report

RESOLUTIONS = ("working", "full")
_SLICE_SPACINGS_FULL = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)


@dataclass
class PhantomCase:
    """One generated scan.

    Attributes:
        volume: int16 HU array in voxel order (i, j, k) as nibabel returns it.
        affine: 4x4 voxel -> RAS+ world (mm); LPS-ordered axes like scanner DICOM converted to NIfTI.
        spacing: voxel size (mm) per axis.
        labels: CT-RATE finding name -> 0/1, in CT-RATE order.
        findings_text: report findings section. impression_text: report impression.
        organ_map: uint8 organ label per voxel (ids in ``anatomy.yaml``).
        finding_map: uint8 finding id per voxel (1-based position in CT-RATE order; 0 = none).
        details: per positive finding, rendering details (side, lobe, size...).
        meta: acquisition parameters (contrast, noise, rotation, field of view...).
    """

    volume: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    labels: dict[str, int]
    findings_text: str
    impression_text: str
    organ_map: np.ndarray
    finding_map: np.ndarray
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def report_text(self) -> str:
        return f"{self.findings_text} {self.impression_text}".strip()

    def organ_mask(self, *names: str) -> np.ndarray:
        """Boolean mask of organs or organ groups (e.g. ``"lungs"``, ``"heart"``, ``"bone"``)."""
        return np.isin(self.organ_map, ids_of(names))

    def finding_mask(self, name: str) -> np.ndarray:
        """Boolean mask of the voxels where a finding (CT-RATE name) is visible."""
        return self.finding_map == finding_id(name)


def _case_rng(seed: int, index: int, *, stream: int = 0) -> np.random.Generator:
    key = [int(seed) & 0xFFFFFFFF, int(index)] + ([stream] if stream else [])
    return np.random.default_rng(np.random.SeedSequence(key))


def _choose_findings(
    rng: np.random.Generator, findings: Sequence[str] | None, finding_rate: float | None
) -> set[str]:
    names = finding_names()
    draws = rng.random(len(names))  # always drawn, so the rest of the case does not depend on the options
    if findings is not None:
        unknown = [f for f in findings if f not in names]
        if unknown:
            raise UsageError(
                f"unknown finding(s) {', '.join(map(repr, unknown))}",
                hint="use CT-RATE names: " + ", ".join(names),
            )
        return set(findings)
    rates = (
        [float(finding_rate)] * len(names)
        if finding_rate is not None
        else [f["prevalence"] for f in finding_table()]
    )
    return {n for n, d, r in zip(names, draws, rates) if d < r}


def _grid(
    rng: np.random.Generator,
    an,
    resolution: str,
    shape: Sequence[int] | None,
    spacing: Sequence[float] | None,
) -> tuple[tuple[int, int, int], tuple[float, float, float], float]:
    z_lo = min(an.dome.values()) - float(rng.uniform(30, 60))
    z_hi = an.w_apex + float(rng.uniform(20, 45))
    if resolution == "full":
        matrix, fov_hi = 512, 0.9 * 512
        sz = float(_SLICE_SPACINGS_FULL[int(rng.integers(len(_SLICE_SPACINGS_FULL)))])
    else:
        matrix, fov_hi = 128, 400.0
        sz = float(rng.uniform(2.0, 3.0))
    fov = float(rng.uniform(max(2 * an.a + 12, 0.6 * 512 if resolution == "full" else 300.0), fov_hi))
    sp = (fov / matrix, fov / matrix, sz)
    shp = (matrix, matrix, max(8, round((z_hi - z_lo) / sz)))
    if spacing is not None:
        sp = tuple(float(s) for s in spacing)
    if shape is not None:
        shp = tuple(int(s) for s in shape)
        z_lo = 0.5 * (z_lo + z_hi) - 0.5 * (shp[2] - 1) * sp[2]
    if len(sp) != 3 or len(shp) != 3 or min(sp) <= 0 or min(shp) < 2:
        raise UsageError(f"invalid phantom grid shape={shp} spacing={sp}", hint="3 positive values each")
    return shp, sp, z_lo  # type: ignore[return-value]


def generate_phantom(
    *,
    seed: int,
    index: int = 0,
    findings: Sequence[str] | None = None,
    finding_rate: float | None = None,
    resolution: str = "working",
    shape: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    noise: bool = True,
) -> PhantomCase:
    """Generate one phantom chest CT; the result depends only on the arguments.

    Args:
        seed: base seed; case ``index`` of a series uses ``(seed, index)``.
        index: case number within the series.
        findings: force exactly these CT-RATE findings (others absent). ``[]`` gives a normal scan.
        finding_rate: probability of each finding when ``findings`` is None (default: CT-RATE prevalences).
        resolution: ``"working"`` (128x128 in-plane, ~2.3-3.1 mm, 2-3 mm slices) or ``"full"`` (512x512,
            0.6-0.9 mm, 1-5 mm slices).
        shape, spacing: override the sampled grid.
        noise: add scanner noise (disable for exact-HU checks).
    """
    if resolution not in RESOLUTIONS:
        raise UsageError(f"unknown resolution {resolution!r}", hint="working or full")
    if finding_rate is not None and not 0.0 <= finding_rate <= 1.0:
        raise UsageError(f"finding rate {finding_rate} outside [0, 1]")
    rng = _case_rng(seed, index)
    present = _choose_findings(rng, findings, finding_rate)
    atel_side = -1 if rng.random() < 0.5 else 1
    an = sample_anatomy(
        rng, cardiomegaly="Cardiomegaly" in present, volume_loss=atel_side if "Atelectasis" in present else 0
    )
    shp, sp, w0 = _grid(rng, an, resolution, shape, spacing)
    fov = shp[0] * sp[0]
    rot = float(rng.uniform(-4, 4))
    room = max(0.0, 0.5 * fov - an.a - 4)
    offset = (float(rng.uniform(-1, 1)) * min(room, 15.0), float(rng.uniform(-1, 1)) * min(room, 20.0))
    cv = Canvas(shape=shp, spacing=sp, rotation_deg=rot, offset=offset, w0=w0)
    paint_anatomy(cv, an, rng)
    details = render_findings(cv, an, present, rng, atelectasis_side=atel_side)
    sigma = float(rng.uniform(10, 35) if resolution == "full" else rng.uniform(6, 18))
    if noise:
        cv.hu += sigma * rng.standard_normal(cv.shape, dtype=np.float32)
    r2 = (cv.x[:, None] ** 2 + cv.y[None, :] ** 2) > (0.5 * fov) ** 2  # outside the reconstruction circle
    cv.hu[r2] = -1024.0
    volume = np.clip(np.rint(cv.hu), -1024, 3071).astype(np.int16)
    labels = {n: int(n in present) for n in finding_names()}
    # the wording has its own stream, so editing the phrase table never changes a case's volume or geometry
    findings_text, impression = write_report(labels, details, _case_rng(seed, index, stream=1))
    # Voxel -> RAS affine of an LPS-ordered scanner grid (i: R->L, j: A->P, k: I->S).
    table_z = float(rng.uniform(-600, -100))
    lps0 = (float(cv.x[0]), float(cv.y[0]) - float(rng.uniform(100, 200)), table_z)
    affine = np.array(
        [[-sp[0], 0, 0, -lps0[0]], [0, -sp[1], 0, -lps0[1]], [0, 0, sp[2], lps0[2]], [0, 0, 0, 1]],
        dtype=np.float64,
    )
    meta = {
        "contrast": an.contrast,
        "noise_sigma": round(sigma, 2) if noise else 0.0,
        "rotation_deg": round(rot, 2),
        "fov_mm": round(fov, 1),
        "ctr": round(an.ctr_target, 3),
        "resolution": resolution,
        "seed": int(seed),
        "index": int(index),
    }
    return PhantomCase(
        volume=volume, affine=affine, spacing=tuple(sp), labels=labels, findings_text=findings_text,
        impression_text=impression, organ_map=cv.organ, finding_map=cv.finding, details=details, meta=meta,
    )  # fmt: skip


# --------------------------------------------------------------------------- writing a folder


def case_name(seed: int, index: int) -> str:
    return f"phantom_{seed}_{index:06d}"


def save_nifti(path: str | os.PathLike, volume: np.ndarray, affine: np.ndarray) -> None:
    """Write an int16 NIfTI (.nii.gz at fast compression) with scanner qform/sform."""
    import nibabel as nib

    img = nib.Nifti1Image(volume, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    data = img.to_bytes()
    if str(path).endswith(".gz"):
        try:
            from isal import igzip as gz
        except ImportError:  # pragma: no cover - isal is a dependency
            import gzip as gz
        data = gz.compress(data, compresslevel=1, mtime=0)  # mtime=0: byte-identical files per seed
    tmp = Path(str(path) + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _make_one(job: tuple) -> dict[str, Any]:
    out_dir, seed, index, findings, finding_rate, resolution, masks = job
    case = generate_phantom(
        seed=seed, index=index, findings=findings, finding_rate=finding_rate, resolution=resolution
    )
    name = case_name(seed, index)
    save_nifti(Path(out_dir) / f"{name}.nii.gz", case.volume, case.affine)
    if masks:
        save_nifti(Path(out_dir) / "masks" / f"{name}.nii.gz", case.finding_map, case.affine)
    return {
        "name": name,
        "index": index,
        "shape": list(case.volume.shape),
        "spacing": [round(s, 3) for s in case.spacing],
        "contrast": case.meta["contrast"],
        "labels": case.labels,
        "findings_text": case.findings_text,
        "impression_text": case.impression_text,
    }


def write_phantoms(
    out_dir: str | os.PathLike,
    *,
    n: int,
    seed: int,
    findings: Sequence[str] | None = None,
    finding_rate: float | None = None,
    resolution: str = "working",
    workers: int = 0,
    start: int = 0,
    masks: bool = False,
    on_case: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Write ``n`` phantoms (cases ``start .. start+n-1`` of series ``seed``) and their CSV files.

    Files: ``<name>.nii.gz`` per case, ``reports.csv`` (VolumeName, Findings_EN, Impressions_EN, report_text),
    ``labels.csv`` (VolumeName + the 18 CT-RATE columns in CT-RATE order) and ``pairs.csv`` (image, text);
    with ``masks``, ``masks/<name>.nii.gz``: the finding label map on the scan's grid (uint8, value k = the k-th
    CT-RATE column, 0 = none; where findings overlap, the one rendered last).
    Case ``i`` depends only on ``(seed, i)``, so shards (``start``) and any ``workers`` count give identical
    files.

    Returns:
        Summary: out_dir, n, seconds, scans_per_s, and ``cases`` (one record per case, in index order).
    """
    if n < 1:
        raise UsageError(f"-n must be at least 1, got {n}")
    if resolution not in RESOLUTIONS:
        raise UsageError(f"unknown resolution {resolution!r}", hint="working or full")
    if findings is not None:
        _choose_findings(np.random.default_rng(0), findings, None)  # validate names early
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if masks:
            (out / "masks").mkdir(exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output folder ({e.strerror})", path=out) from None
    jobs = [(str(out), int(seed), start + i, list(findings) if findings is not None else None, finding_rate, resolution,
             masks) for i in range(n)]  # fmt: skip
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if workers and workers > 1 and n > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(_start_method())) as ex:
            for row in ex.map(_make_one, jobs, chunksize=max(1, min(16, math.ceil(n / (4 * workers))))):
                rows.append(row)
                if on_case:
                    on_case(row)
    else:
        for job in jobs:
            row = _make_one(job)
            rows.append(row)
            if on_case:
                on_case(row)
    seconds = time.perf_counter() - t0
    _write_csvs(out, rows)
    return {"out_dir": str(out), "n": n, "seconds": round(seconds, 2), "scans_per_s": round(n / seconds, 2),
            "cases": rows}  # fmt: skip


def _start_method() -> str:
    # Workers only need numpy/nibabel; "fork" starts instantly and also works from notebooks and stdin scripts.
    import multiprocessing as mp

    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


def _write_csvs(out: Path, rows: list[dict[str, Any]]) -> None:
    names = finding_names()

    def write(fname: str, header: list[str], records: list[list[Any]]) -> None:
        tmp = out / (fname + ".part")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(records)
        tmp.replace(out / fname)

    vol = [f"{r['name']}.nii.gz" for r in rows]
    write(
        "reports.csv",
        ["VolumeName", "Findings_EN", "Impressions_EN", "report_text"],
        [[v, r["findings_text"], r["impression_text"], f"{r['findings_text']} {r['impression_text']}"]
         for v, r in zip(vol, rows)],
    )  # fmt: skip
    write(
        "labels.csv",
        ["VolumeName", *names],
        [[v, *(r["labels"][n] for n in names)] for v, r in zip(vol, rows)],
    )
    write(
        "pairs.csv",
        ["image", "text"],
        [[v, f"{r['findings_text']} {r['impression_text']}"] for v, r in zip(vol, rows)],
    )

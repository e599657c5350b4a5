"""Quick-look PNG: axial, coronal and sagittal slices through the labelled organs with coloured overlays.

Written with SimpleITK (an RGB 2-D image); no plotting library. Slices are drawn at their physical aspect ratio
(thick slices are stretched) in radiological convention: the patient's right on the image's left.
"""

from __future__ import annotations

import os

import numpy as np

from ctvl_cli.io.volume import Volume
from ctvl_cli.segment.labels import organ_colors, organ_labels

WINDOW = (-1000.0, 400.0)
ALPHA = 0.45
PANEL_PX = 320


def _ras(vol: Volume, labels: np.ndarray):
    import nibabel.orientations as no

    xf = no.ornt_transform(no.io_orientation(vol.affine), no.axcodes2ornt(("R", "A", "S")))
    sp = [0.0, 0.0, 0.0]
    for i, (o, _) in enumerate(xf):
        sp[int(o)] = vol.spacing[i]
    return no.apply_orientation(vol.array, xf), no.apply_orientation(labels, xf), sp


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W, ...) array."""
    ri = np.minimum((np.arange(h) + 0.5) * img.shape[0] / h, img.shape[0] - 1).astype(int)
    ci = np.minimum((np.arange(w) + 0.5) * img.shape[1] / w, img.shape[1] - 1).astype(int)
    return img[ri][:, ci]


def _panel(gray: np.ndarray, lab: np.ndarray, px_h: float, px_w: float, lut: np.ndarray, mm_px: float):
    """gray/lab (rows, cols) with physical pixel size (px_h, px_w) mm -> RGB uint8 at ``mm_px`` mm per pixel."""
    lo, hi = WINDOW
    g = np.clip((gray.astype(np.float32) - lo) / (hi - lo), 0, 1) * 255
    rgb = np.repeat(g[..., None], 3, axis=2)
    col = lut[lab]
    on = lab > 0
    rgb[on] = (1 - ALPHA) * rgb[on] + ALPHA * col[on]
    h = max(1, round(gray.shape[0] * px_h / mm_px))
    w = max(1, round(gray.shape[1] * px_w / mm_px))
    return _resize(rgb.astype(np.uint8), h, w)


def render_preview(vol: Volume, labels: np.ndarray) -> np.ndarray:
    """(PANEL_PX, W, 3) uint8: axial | coronal | sagittal through the centre of the labelled organs."""
    a, lab, sp = _ras(vol, labels)
    names = organ_labels()
    lut = np.zeros((256, 3), np.float32)
    for name, c in organ_colors().items():
        lut[names[name]] = c
    body = names.get("body")
    organ = (lab > 0) & (lab != body)
    where = np.argwhere(organ) if organ.any() else np.argwhere(lab > 0)
    cx, cy, cz = (where.mean(axis=0).round().astype(int) if len(where) else np.array(a.shape) // 2).tolist()
    # image rows go from anterior (top) to posterior, columns from the patient's right to left (radiological)
    axial = (a[::-1, ::-1, cz].T, lab[::-1, ::-1, cz].T, sp[1], sp[0])
    coronal = (a[::-1, cy, ::-1].T, lab[::-1, cy, ::-1].T, sp[2], sp[0])
    sagittal = (a[cx, ::-1, ::-1].T, lab[cx, ::-1, ::-1].T, sp[2], sp[1])
    mm_px = max(n * s for n, s in zip(a.shape, sp)) / PANEL_PX  # the largest extent spans PANEL_PX pixels
    panels = [_panel(g, lb, ph, pw, lut, mm_px) for g, lb, ph, pw in (axial, coronal, sagittal)]
    height = max(p.shape[0] for p in panels)
    row = []
    for p in panels:
        pad = np.zeros((height, p.shape[1] + 4, 3), np.uint8)
        pad[: p.shape[0], : p.shape[1]] = p
        row.append(pad)
    return np.ascontiguousarray(np.concatenate(row, axis=1)[:, :-4])


def write_preview(path: str | os.PathLike, vol: Volume, labels: np.ndarray) -> None:
    import SimpleITK as sitk

    rgb = render_preview(vol, labels)
    tmp = f"{path}.part.png"
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), tmp)
    os.replace(tmp, path)

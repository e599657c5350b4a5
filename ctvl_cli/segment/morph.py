"""Binary-mask helpers on numpy arrays in (x, y, z) voxel order, done with SimpleITK filters.

SimpleITK arrays are (z, y, x); these helpers transpose at the boundary so callers never see that.
Spacings are in mm, (x, y, z); morphological radii are given in mm and converted per axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def img(m: np.ndarray, spacing: Sequence[float] | None = None, dtype=np.uint8):
    import SimpleITK as sitk

    im = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(m, dtype).T))
    if spacing is not None:
        im.SetSpacing([float(s) for s in spacing][: m.ndim])
    return im


def arr(im) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(im).T


def radius(mm: float | Sequence[float], spacing: Sequence[float]) -> list[int]:
    mms = [mm] * len(spacing) if isinstance(mm, (int, float)) else list(mm)
    return [max(0, round(r / s)) for r, s in zip(mms, spacing)]


def components(m: np.ndarray, full: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Connected components sorted by size: (labels int32 with 1 = largest, sizes[label])."""
    import SimpleITK as sitk

    if not m.any():
        return np.zeros(m.shape, np.int32), np.zeros(1, np.int64)
    lab = sitk.RelabelComponent(sitk.ConnectedComponent(img(m), full), sortByObjectSize=True)
    a = arr(lab).astype(np.int32, copy=False)
    return a, np.bincount(a.ravel())


def largest(m: np.ndarray, full: bool = False) -> np.ndarray:
    lab, _ = components(m, full)
    return lab == 1


def closing(m: np.ndarray, spacing, mm) -> np.ndarray:
    import SimpleITK as sitk

    r = radius(mm, spacing)
    if not m.any() or not any(r):
        return m.copy()
    return arr(sitk.BinaryMorphologicalClosing(img(m), r, sitk.sitkBall, 1, True)).astype(bool)


def opening(m: np.ndarray, spacing, mm) -> np.ndarray:
    import SimpleITK as sitk

    r = radius(mm, spacing)
    if not m.any() or not any(r):
        return m.copy()
    return arr(sitk.BinaryMorphologicalOpening(img(m), r, sitk.sitkBall, 0, 1)).astype(bool)


def dilate(m: np.ndarray, spacing, mm) -> np.ndarray:
    import SimpleITK as sitk

    r = radius(mm, spacing)
    if not m.any() or not any(r):
        return m.copy()
    return arr(sitk.BinaryDilate(img(m), r, sitk.sitkBall, 0, 1)).astype(bool)


def erode(m: np.ndarray, spacing, mm) -> np.ndarray:
    import SimpleITK as sitk

    r = radius(mm, spacing)
    if not m.any() or not any(r):
        return m.copy()
    return arr(sitk.BinaryErode(img(m), r, sitk.sitkBall, 0, 1)).astype(bool)


def fill_slices(m: np.ndarray, max_area_px: int | None = None) -> np.ndarray:
    """Fill holes in every axial slice (z = last axis); holes larger than ``max_area_px`` stay open."""
    import SimpleITK as sitk

    out = m.copy()
    for k in np.nonzero(m.any(axis=(0, 1)))[0]:
        s = m[:, :, k]
        filled = arr(sitk.BinaryFillhole(img(s), False, 1)).astype(bool)
        holes = filled & ~s
        if max_area_px is not None and holes.any():
            lab, sizes = components(holes)
            big = np.nonzero(sizes > max_area_px)[0]
            holes &= ~np.isin(lab, big[big > 0])
        out[:, :, k] = s | holes
    return out


def distance(m: np.ndarray, spacing) -> np.ndarray:
    """Signed distance (mm) to the mask boundary: negative inside."""
    import SimpleITK as sitk

    d = sitk.SignedMaurerDistanceMap(
        img(m, spacing), insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return arr(d)

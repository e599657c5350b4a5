"""Voxel canvas of a phantom: HU, organ and finding label maps plus analytic-shape painting.

Patient coordinates (mm) used by every shape: ``u`` towards the patient's left, ``v`` towards posterior,
``w`` towards superior (origin near the carina). The scanner grid is LPS-ordered like DICOM series converted
to NIfTI: voxel axis i runs right->left, j anterior->posterior, k inferior->superior. The patient may lie
slightly rotated about the long axis and off-centre in the field of view; the grid itself stays axis-aligned,
as on a real scanner.

Shapes are painted with partial volume: a signed distance ``sd`` (mm, negative inside) is turned into a
coverage ``alpha = clip(0.5 - sd / h, 0, 1)`` with ``h`` the voxel size, and the voxel HU is blended towards
the shape's value. Labels are written where ``alpha >= 0.5``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from importlib import resources

import numpy as np
import yaml


@functools.lru_cache(maxsize=1)
def anatomy_table() -> dict:
    """The packaged organ label table and HU ranges (``anatomy.yaml``)."""
    text = resources.files("ctvl_cli.phantom").joinpath("anatomy.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=1)
def organ_ids() -> dict[str, int]:
    """Organ name -> label id."""
    return {name: int(i) for i, name in anatomy_table()["organs"].items()}


def ids_of(names: Iterable[str]) -> list[int]:
    """Label ids of organ names or organ groups (``anatomy.yaml: groups``)."""
    table, groups = organ_ids(), anatomy_table()["groups"]
    out: list[int] = []
    for n in names:
        out += [table[m] for m in groups[n]] if n in groups else [table[n]]
    return out


@functools.lru_cache(maxsize=256)
def _lut(ids: tuple[int, ...]) -> np.ndarray:
    lut = np.zeros(256, dtype=bool)
    lut[list(ids)] = True
    return lut


class Canvas:
    """HU volume + organ/finding label maps on a scanner grid, with patient-coordinate lookups.

    Args:
        shape: voxels per axis (i, j, k).
        spacing: voxel size in mm per axis.
        rotation_deg: rotation of the patient about the long axis.
        offset: (x, y) mm position of the patient centre relative to the centre of the field of view.
        w0: patient ``w`` coordinate (mm) of slice k = 0.
    """

    def __init__(
        self,
        *,
        shape: Sequence[int],
        spacing: Sequence[float],
        rotation_deg: float,
        offset: Sequence[float],
        w0: float,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.spacing = tuple(float(s) for s in spacing)
        nx, ny, nz = self.shape
        sx, sy, sz = self.spacing
        self.h = float((sx * sy * sz) ** (1.0 / 3.0))
        self.theta = math.radians(rotation_deg)
        self.offset = (float(offset[0]), float(offset[1]))
        self.x = ((np.arange(nx) - (nx - 1) / 2.0) * sx).astype(np.float32)
        self.y = ((np.arange(ny) - (ny - 1) / 2.0) * sy).astype(np.float32)
        c, s = math.cos(self.theta), math.sin(self.theta)
        xx = self.x[:, None] - self.offset[0]
        yy = self.y[None, :] - self.offset[1]
        self.U = (c * xx + s * yy).astype(np.float32)
        self.V = (-s * xx + c * yy).astype(np.float32)
        self.W = (w0 + np.arange(nz) * sz).astype(np.float32)
        self.hu = np.full(self.shape, -1000.0, dtype=np.float32)
        self.organ = np.zeros(self.shape, dtype=np.uint8)
        self.finding = np.zeros(self.shape, dtype=np.uint8)

    # ----------------------------------------------------------------- coordinates
    def to_scanner(self, u: float, v: float) -> tuple[float, float]:
        c, s = math.cos(self.theta), math.sin(self.theta)
        return c * u - s * v + self.offset[0], s * u + c * v + self.offset[1]

    def index_of(self, p: Sequence[float]) -> tuple[int, int, int] | None:
        """Nearest voxel index of a patient point, or None outside the grid."""
        x, y = self.to_scanner(p[0], p[1])
        idx = (
            round((x - float(self.x[0])) / self.spacing[0]),
            round((y - float(self.y[0])) / self.spacing[1]),
            round((p[2] - float(self.W[0])) / self.spacing[2]),
        )
        if all(0 <= i < n for i, n in zip(idx, self.shape)):
            return idx
        return None

    def window(self, lo: Sequence[float], hi: Sequence[float]) -> tuple[slice, slice, slice] | None:
        """Index slices covering the patient-space box [lo, hi] (mm), padded by one voxel."""
        corners = [self.to_scanner(u, v) for u in (lo[0], hi[0]) for v in (lo[1], hi[1])]
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        out = []
        for axis, (a, b) in enumerate(((min(xs), max(xs)), (min(ys), max(ys)), (float(lo[2]), float(hi[2])))):
            start = float(self.W[0]) if axis == 2 else float((self.x, self.y)[axis][0])
            i0 = max(0, math.floor((a - start) / self.spacing[axis]) - 1)
            i1 = min(self.shape[axis], math.ceil((b - start) / self.spacing[axis]) + 2)
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return out[0], out[1], out[2]

    def coords(self, sl: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable patient coordinates (u, v, w) of a window."""
        return (
            self.U[sl[0], sl[1]][:, :, None],
            self.V[sl[0], sl[1]][:, :, None],
            self.W[sl[2]][None, None, :],
        )

    def full(self) -> tuple[slice, slice, slice]:
        return slice(None), slice(None), slice(None)

    # ----------------------------------------------------------------- painting
    def alpha(self, sd: np.ndarray) -> np.ndarray:
        return np.clip(0.5 - sd / self.h, 0.0, 1.0).astype(np.float32)

    def paint(
        self,
        sl: tuple[slice, slice, slice],
        alpha: np.ndarray,
        value: float | np.ndarray,
        *,
        organ: str | None = None,
        finding: int | None = None,
        allow: Sequence[int] | None = None,
        deny: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Blend ``value`` into the window with coverage ``alpha``; returns the labelled boolean mask.

        ``allow`` / ``deny`` restrict painting to voxels whose current organ label is (not) in the list.
        """
        org = self.organ[sl]
        alpha = np.broadcast_to(alpha, org.shape)
        if allow is not None:
            alpha = alpha * _lut(tuple(allow))[org]
        if deny is not None:
            alpha = alpha * ~_lut(tuple(deny))[org]
        hu = self.hu[sl]
        hu += alpha * (value - hu)
        sel = alpha >= 0.5
        if organ is not None:
            org[sel] = organ_ids()[organ]
        if finding is not None:
            self.finding[sl][sel] = finding
        return sel

    def ellipsoid(
        self,
        center: Sequence[float],
        radii: Sequence[float],
        value: float,
        *,
        rot: np.ndarray | None = None,
        margin: float = 0.0,
        **kw,
    ) -> np.ndarray | None:
        """Paint an (optionally rotated) ellipsoid grown by ``margin`` mm."""
        r = np.asarray(radii, dtype=np.float64) + margin
        ext = float(r.max()) + 2 * self.h
        c = np.asarray(center, dtype=np.float64)
        sl = self.window(c - ext, c + ext)
        if sl is None:
            return None
        u, v, w = self.coords(sl)
        d = (u - c[0], v - c[1], w - c[2])
        if rot is not None:  # rot rows = ellipsoid axes in patient coordinates
            d = tuple(rot[a, 0] * d[0] + rot[a, 1] * d[1] + rot[a, 2] * d[2] for a in range(3))
        q = np.sqrt((d[0] / r[0]) ** 2 + (d[1] / r[1]) ** 2 + (d[2] / r[2]) ** 2)
        sd = (q - 1.0) * float(r.min())
        return self.paint(sl, self.alpha(sd), value, **kw)

    def capsule(
        self,
        a: Sequence[float],
        b: Sequence[float],
        r0: float,
        r1: float | None,
        value: float,
        **kw,
    ) -> np.ndarray | None:
        """Paint a tube from ``a`` to ``b`` with radius tapering linearly from r0 to r1 (rounded ends)."""
        r1 = r0 if r1 is None else r1
        a_ = np.asarray(a, dtype=np.float64)
        b_ = np.asarray(b, dtype=np.float64)
        ext = max(r0, r1) + 2 * self.h
        sl = self.window(np.minimum(a_, b_) - ext, np.maximum(a_, b_) + ext)
        if sl is None:
            return None
        u, v, w = self.coords(sl)
        ab = b_ - a_
        L2 = float(ab @ ab) or 1e-9
        pu, pv, pw = u - a_[0], v - a_[1], w - a_[2]
        t = np.clip((pu * ab[0] + pv * ab[1] + pw * ab[2]) / L2, 0.0, 1.0)
        d = np.sqrt((pu - t * ab[0]) ** 2 + (pv - t * ab[1]) ** 2 + (pw - t * ab[2]) ** 2)
        sd = d - (r0 + t * (r1 - r0))
        return self.paint(sl, self.alpha(sd), value, **kw)

    def polyline(self, pts: Sequence[Sequence[float]], radius: float, value: float, **kw) -> None:
        for p, q in itertools.pairwise(pts):
            self.capsule(p, q, radius, radius, value, **kw)

    # ----------------------------------------------------------------- queries
    def mask(self, *names: str) -> np.ndarray:
        return np.isin(self.organ, ids_of(names))

    def sample_points(self, flat_idx: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """Patient coordinates (n, 3) of ``n`` random voxels among ``flat_idx``."""
        if flat_idx.size == 0:
            return np.zeros((0, 3))
        pick = flat_idx[rng.integers(0, flat_idx.size, size=n)]
        i, j, k = np.unravel_index(pick, self.shape)
        return np.stack([self.U[i, j], self.V[i, j], self.W[k]], axis=1).astype(np.float64)


def rotation(*, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation matrix (rows = rotated axes) from angles in degrees about w (yaw), u (pitch), v (roll)."""
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cr, 0, sr], [0, 1, 0], [-sr, 0, cr]])
    return (rz @ rx @ ry).T


def grid_noise(
    cv: Canvas, sl: tuple[slice, slice, slice], *, cell_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Smooth random field (roughly unit variance) on a window of the grid.

    A random lattice with ``cell_mm`` spacing is interpolated linearly along each scanner axis (separable, so it
    stays cheap at full resolution).
    """
    n = [len(range(*s_.indices(dim))) for s_, dim in zip(sl, cv.shape)]
    mats = []
    for axis, count in enumerate(n):
        step = cv.spacing[axis] / cell_mm
        g = np.arange(count, dtype=np.float64) * step + rng.uniform(0, 1)
        i0 = np.floor(g).astype(np.int64)
        f = g - i0
        m = np.zeros((count, int(i0.max()) + 2), dtype=np.float32)
        m[np.arange(count), i0] = 1 - f
        m[np.arange(count), i0 + 1] = f
        mats.append(m)
    lattice = rng.standard_normal([m.shape[1] for m in mats]).astype(np.float32)
    out = np.tensordot(mats[2], lattice, axes=([1], [2]))  # (nz, a, b)
    out = np.tensordot(mats[1], out, axes=([1], [2]))  # (ny, nz, a)
    out = np.tensordot(mats[0], out, axes=([1], [2]))  # (nx, ny, nz)
    return out * 1.6

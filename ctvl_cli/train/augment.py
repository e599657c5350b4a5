"""Training-time spatial augmentation of preprocessed volumes (``finetune clip --aug-shift/--aug-rotate/--aug-scale``).

A random affine per scan (translation in mm, rotation in degrees about each axis, isotropic scale), applied to the
model-ready tensor with trilinear ``grid_sample`` in torch; voxels that come from outside the volume take the card's
``pad_value`` (air). No flips: left and right carry meaning in reports ("right lower lobe").

Parameters are drawn from a generator seeded by (seed, epoch, index), like the text augmentation, so an epoch is
reproducible and a resumed run sees exactly the inputs an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SpatialAug:
    shift_mm: float = 0.0
    rotate_deg: float = 0.0
    scale: float = 0.0  # relative: 0.1 draws factors in [0.9, 1.1]

    @property
    def active(self) -> bool:
        return bool(self.shift_mm or self.rotate_deg or self.scale)


def draw(aug: SpatialAug, key: int) -> tuple[list[float], list[float], float]:
    """(shift per axis in mm, rotation per axis in degrees, scale factor) for one scan."""
    import torch

    g = torch.Generator().manual_seed(key & 0x7FFFFFFFFFFFFFFF)
    u = torch.rand(7, generator=g, dtype=torch.float64) * 2 - 1  # always 7 draws: each knob independent
    shift = [float(v) * aug.shift_mm for v in u[:3]]
    rot = [float(v) * aug.rotate_deg for v in u[3:6]]
    return shift, rot, 1.0 + float(u[6]) * aug.scale


def apply(x, spacing, pad_value: float, shift_mm, rot_deg, scale: float, *, mode: str = "bilinear"):
    """x: (C, D, H, W) tensor on a grid of ``spacing`` mm per axis -> the same grid showing the scan moved by
    ``shift_mm``, rotated by ``rot_deg`` about its centre and scaled by ``scale`` (output voxel p shows input
    position centre + R^-1 (p - centre - shift) / scale), interpolated with ``mode`` (grid_sample's: "bilinear"
    is trilinear in 3-D; "nearest" keeps label values)."""
    import torch
    import torch.nn.functional as F

    size = x.shape[1:]
    ext = torch.tensor([n * s for n, s in zip(size, spacing)], dtype=torch.float64)  # extent in mm per axis
    a, b, c = (math.radians(r) for r in rot_deg)
    rx = torch.tensor(
        [[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]], dtype=torch.float64
    )
    ry = torch.tensor(
        [[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]], dtype=torch.float64
    )
    rz = torch.tensor(
        [[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]], dtype=torch.float64
    )
    inv = (rz @ ry @ rx).T / scale  # output mm offset -> input mm offset
    # normalised coordinates (align_corners=False): u = 2 * mm / extent; affine_grid wants (x, y, z) = (W, H, D)
    half = ext / 2
    theta_dhw = torch.diag(1 / half) @ inv @ torch.diag(half)
    t_dhw = -(theta_dhw @ torch.tensor(shift_mm, dtype=torch.float64) / half)
    perm = [2, 1, 0]
    theta = torch.zeros(1, 3, 4, dtype=torch.float64)
    theta[0, :, :3] = theta_dhw[perm][:, perm]
    theta[0, :, 3] = t_dhw[perm]
    grid = F.affine_grid(theta.to(torch.float32), [1, *x.shape], align_corners=False).to(x.device)
    # grid_sample pads with zeros: sample (x - pad) and add pad back, so outside voxels read pad_value
    out = F.grid_sample(
        (x.float() - pad_value)[None], grid, mode=mode, padding_mode="zeros", align_corners=False
    )
    return (out[0] + pad_value).to(x.dtype)

"""``PreprocessSpec``: the preprocessing a model card declares. Pure Python (no numpy/torch).

Keys (all in the OUTPUT tensor's axis order):

``orientation``   three axis codes naming where each output axis points, e.g. ``"RAS"`` (MONAI/Merlin: x→Right,
                  y→Anterior, z→Superior) or ``"SLP"`` (CT-CLIP's tensor: axis 0→Superior, 1→Left, 2→Posterior).
``spacing``       target voxel size in mm per output axis.
``interpolation`` ``"trilinear"`` or ``"nearest"``.
``resample``      how the output grid is defined:
                  ``"size"`` — output size ``int(n_in * spacing_in / spacing_out)`` per axis (truncation), sampled with
                  ``torch.nn.functional.interpolate(size=..., align_corners=False)`` semantics (CT-CLIP's resize_array).
                  ``"monai"`` — MONAI ``Spacing`` (Merlin): output size ``round((n_in - 1) * spacing_in / spacing_out + 1)``,
                  output voxel ``i`` centred on input voxel position ``i * spacing_out / spacing_in`` (voxel 0 stays put),
                  linear interpolation, positions past the last voxel take its value (grid_sample ``border`` padding).
``hu_window``     ``[lo, hi]``: HU values are clipped to this window ...
``output_range``  ``[a, b]``: ... and mapped linearly so that lo→a and hi→b (CT-CLIP: [-1000,1000]→[-1,1], i.e. /1000).
``clip_before_resample``  clip HU before (true) or after (false) resampling.
``shape``         output size per axis; centre crop (start ``(n - s) // 2``) then symmetric pad
                  (before ``(s - n) // 2``, the rest after), as CT-CLIP's data.py and MONAI's SpatialPad/CenterSpatialCrop
                  do for even sizes.
``pad_value``     padding value in OUTPUT units (CT-CLIP: -1, i.e. -1000 HU).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctvl_cli.errors import CardError

_PAIRS = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
RESAMPLE_MODES = ("size", "monai")
INTERPOLATIONS = ("trilinear", "nearest")
KEYS = (
    "orientation",
    "spacing",
    "interpolation",
    "resample",
    "hu_window",
    "output_range",
    "clip_before_resample",
    "shape",
    "pad_value",
)


@dataclass(frozen=True)
class PreprocessSpec:
    orientation: str
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    hu_window: tuple[float, float] = (-1000.0, 1000.0)
    output_range: tuple[float, float] = (-1.0, 1.0)
    interpolation: str = "trilinear"
    resample: str = "size"
    clip_before_resample: bool = True
    pad_value: float = -1.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "preprocess") -> PreprocessSpec:
        if not isinstance(d, Mapping):
            raise CardError(f"{where}: expected an object")
        unknown = sorted(set(d) - set(KEYS))
        if unknown:
            raise CardError(f"{where}: unknown keys {unknown}", hint=f"allowed: {', '.join(KEYS)}")
        for k in ("orientation", "spacing", "shape"):
            if k not in d:
                raise CardError(f"{where}: missing required key {k!r}")
        o = str(d["orientation"]).upper()
        if len(o) != 3 or any(c not in _PAIRS for c in o) or len({_axis(c) for c in o}) != 3:
            raise CardError(
                f"{where}: invalid orientation {d['orientation']!r}",
                hint="three axis codes from R/L, A/P, S/I, one per axis, e.g. RAS or SLP",
            )
        try:
            spacing = tuple(float(x) for x in d["spacing"])
            shape = tuple(int(x) for x in d["shape"])
            win = tuple(float(x) for x in d.get("hu_window", cls.hu_window))
            rng = tuple(float(x) for x in d.get("output_range", cls.output_range))
            pad = float(d.get("pad_value", cls.pad_value))
        except (TypeError, ValueError):
            raise CardError(
                f"{where}: spacing/shape/hu_window/output_range/pad_value must be numbers"
            ) from None
        if len(spacing) != 3 or any(not (s > 0) for s in spacing):
            raise CardError(f"{where}: spacing must be three positive numbers, got {d['spacing']!r}")
        if len(shape) != 3 or any(s < 1 for s in shape):
            raise CardError(f"{where}: shape must be three positive integers, got {d['shape']!r}")
        if len(win) != 2 or not win[0] < win[1]:
            raise CardError(f"{where}: hu_window must be [lo, hi] with lo < hi")
        if len(rng) != 2 or rng[0] == rng[1]:
            raise CardError(f"{where}: output_range must be [a, b] with a != b")
        interp = str(d.get("interpolation", cls.interpolation))
        if interp not in INTERPOLATIONS:
            raise CardError(f"{where}: interpolation must be one of {INTERPOLATIONS}")
        res = str(d.get("resample", cls.resample))
        if res not in RESAMPLE_MODES:
            raise CardError(f"{where}: resample must be one of {RESAMPLE_MODES}")
        cb = d.get("clip_before_resample", cls.clip_before_resample)
        if not isinstance(cb, bool):
            raise CardError(f"{where}: clip_before_resample must be true or false")
        return cls(
            orientation=o,
            spacing=spacing,
            shape=shape,
            hu_window=win,
            output_range=rng,  # type: ignore[arg-type]
            interpolation=interp,
            resample=res,
            clip_before_resample=cb,
            pad_value=pad,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "orientation": self.orientation,
            "spacing": list(self.spacing),
            "interpolation": self.interpolation,
            "resample": self.resample,
            "hu_window": list(self.hu_window),
            "output_range": list(self.output_range),
            "clip_before_resample": self.clip_before_resample,
            "shape": list(self.shape),
            "pad_value": self.pad_value,
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _axis(c: str) -> str:
    return {"R": "x", "L": "x", "A": "y", "P": "y", "S": "z", "I": "z"}[c]

"""The ``totalsegmentator`` backend: TotalSegmentator's ``total`` task (117 classes) mapped to ctvl's organs.

Used when the ``TotalSegmentator`` package and its weights are installed. Weights live under
``$TOTALSEG_WEIGHTS_PATH`` or ``$TOTALSEG_HOME_DIR/nnunet/results`` (default ``~/.totalsegmentator``); ctvl never
downloads them. The class mapping (``organs.yaml``, key ``totalsegmentator``) also converts any existing
TotalSegmentator v2 ``total`` multilabel file (``--ml`` output).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from ctvl_cli.errors import WeightsNotFoundError
from ctvl_cli.segment.labels import organ_labels, organ_table, totalseg_classes

GET_WEIGHTS_HINT = (
    "pip install TotalSegmentator, then `totalseg_download_weights -t total` (add `-t total_fast` for --fast) on a "
    "machine with internet, and copy ~/.totalsegmentator or point TOTALSEG_WEIGHTS_PATH at the weights"
)


def weights_dir() -> Path:
    if os.environ.get("TOTALSEG_WEIGHTS_PATH"):
        return Path(os.environ["TOTALSEG_WEIGHTS_PATH"])
    home = os.environ.get("TOTALSEG_HOME_DIR")
    base = (
        Path(home)
        if home
        else (Path.home() / ".totalsegmentator" if str(Path.home()) != "/" else Path("/tmp"))
    )
    return base / "nnunet" / "results"


def unavailable_reason() -> str | None:
    """None when TotalSegmentator can run here; else one line saying what is missing."""
    if importlib.util.find_spec("totalsegmentator") is None:
        return "the TotalSegmentator package is not installed"
    d = weights_dir()
    if not d.is_dir() or not any(p.name.startswith("Dataset") for p in d.iterdir()):
        return f"no TotalSegmentator weights in {d}"
    return None


def require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise WeightsNotFoundError(f"--backend totalsegmentator: {reason}", hint=GET_WEIGHTS_HINT)


def class_to_organ_lut() -> np.ndarray:
    """(256,) uint8: TotalSegmentator ``total`` label value -> ctvl label value (0 for unmapped classes)."""
    by_name = {n: v for v, n in totalseg_classes().items()}
    lab = organ_labels()
    lut = np.zeros(256, np.uint8)
    for organ, classes in organ_table()["totalsegmentator"].items():
        for c in classes:
            lut[by_name[c]] = lab[organ]
    return lut


def map_total_labels(ts: np.ndarray) -> np.ndarray:
    """A TotalSegmentator v2 ``total`` multilabel array -> ctvl labels (same shape)."""
    ts = np.asarray(ts)
    if ts.size and (ts.min() < 0 or ts.max() > 255):
        raise ValueError("not a TotalSegmentator label map (values outside 0..255)")
    return class_to_organ_lut()[ts.astype(np.intp)]


def run_total(source: str, *, fast: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run TotalSegmentator (python API, ``task="total"``, ``ml=True``) -> (label array, affine)."""
    import torch
    from totalsegmentator.python_api import totalsegmentator

    img = totalsegmentator(
        source,
        None,
        ml=True,
        fast=fast,
        task="total",
        quiet=True,
        device="gpu" if torch.cuda.is_available() else "cpu",
    )
    return np.asarray(img.dataobj).astype(np.int16), np.asarray(img.affine, np.float64)


def to_volume_grid(labels: np.ndarray, affine: np.ndarray, vol) -> np.ndarray:
    """Reorder a label array written on the same grid as ``vol`` in another axis order (e.g. TotalSegmentator's
    canonical output for a DICOM input) to the volume's voxel order."""
    import nibabel.orientations as no

    xf = no.ornt_transform(no.io_orientation(affine), no.io_orientation(vol.affine))
    out = no.apply_orientation(labels, xf)
    if out.shape != vol.shape:
        raise ValueError(f"TotalSegmentator output shape {out.shape} does not match the input {vol.shape}")
    return np.ascontiguousarray(out)

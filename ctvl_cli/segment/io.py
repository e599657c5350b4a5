"""Files of ``segment-organs``: the multilabel NIfTI, its label-map JSON, one NIfTI per organ, and reading them
back (``embed --regions MASK_DIR``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ctvl_cli.errors import InputError
from ctvl_cli.segment.labels import LABEL_MAP_FORMAT, organ_labels

SEG_SUFFIX = "_organs.nii.gz"
MAP_SUFFIX = "_labels.json"


def write_nifti(path: str | os.PathLike, arr: np.ndarray, affine: np.ndarray) -> None:
    """uint8 NIfTI with scanner qform/sform, written atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(arr, np.uint8), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    tmp = Path(f"{path}.part.nii.gz")
    nib.save(img, str(tmp))
    tmp.replace(path)


def write_json(path: str | os.PathLike, record: dict) -> None:
    tmp = Path(f"{path}.part")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


def find_mask(mask_dir: str | os.PathLike, stem: str) -> Path | None:
    """``<stem>_organs.nii.gz`` in ``mask_dir`` (as segment-organs writes it), else the one ``<stem>*.nii.gz``
    that has a label map beside it."""
    d = Path(mask_dir)
    exact = d / f"{stem}{SEG_SUFFIX}"
    if exact.is_file():
        return exact
    cands = sorted(p for p in d.glob(f"{stem}*.nii.gz") if _map_path(p).is_file())
    return cands[0] if len(cands) == 1 else None


def _map_path(seg: Path) -> Path:
    name = seg.name
    base = name[: -len(SEG_SUFFIX)] if name.endswith(SEG_SUFFIX) else name[: -len(".nii.gz")]
    return seg.with_name(base + MAP_SUFFIX)


def read_mask(path: str | os.PathLike, vol) -> tuple[np.ndarray, dict[str, int]]:
    """(labels on the volume's grid, organ -> label value) of a multilabel file and its label map."""
    from ctvl_cli.io.volume import load_volume

    p = Path(path)
    mp = _map_path(p)
    try:
        rec = json.loads(mp.read_text())
        labels = {str(name): int(v) for v, name in rec["labels"].items()}
    except FileNotFoundError:
        raise InputError("no label map beside the mask", path=p, hint=f"expected {mp.name}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(
            "unreadable label map",
            path=mp,
            hint=f"expected a {LABEL_MAP_FORMAT} JSON from `ctvl segment-organs`",
        ) from None
    unknown = sorted(set(labels) - set(organ_labels()))
    if unknown:
        raise InputError(f"unknown organ(s) {', '.join(unknown)} in label map", path=mp)
    m = load_volume(p)
    if m.shape != vol.shape or not np.allclose(m.affine, vol.affine, atol=1e-3):
        raise InputError(
            f"mask grid {m.shape} does not match the scan {vol.shape} (shape or affine differ)",
            path=p,
            hint="masks must be on the scan's grid, as `ctvl segment-organs` writes them",
        )
    return np.asarray(m.array).astype(np.uint8), labels

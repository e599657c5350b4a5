"""Expanding command-line inputs into a sorted list of volumes (files and DICOM series folders)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from ctvl_cli.errors import InputError
from ctvl_cli.io.volume import is_dicom_file, is_volume_file


def _is_dicom_dir(d: Path) -> bool:
    return any(f.is_file() and is_dicom_file(f) for f in d.iterdir())


def _expand_dir(d: Path) -> list[Path]:
    if _is_dicom_dir(d):
        return [d]
    out: list[Path] = []
    for child in sorted(d.iterdir()):
        if child.is_dir():
            out += _expand_dir(child)
        elif is_volume_file(child):
            out.append(child)
    return out


def _expand(item: str, base: Path | None) -> list[Path]:
    if item.startswith("@"):
        lst = Path(item[1:])
        if base is not None and not lst.is_absolute():
            lst = base / lst
        if not lst.is_file():
            raise InputError("input list not found", path=lst, hint="@FILE must list one path per line")
        out: list[Path] = []
        for line in lst.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out += _expand(line, lst.parent)
        return out
    p = Path(item)
    if base is not None and not p.is_absolute():
        p = base / p
    if any(c in item for c in "*?["):
        hits = [Path(h) for h in sorted(glob.glob(str(p), recursive=True))]
        out = []
        for h in hits:
            out += _expand_dir(h) if h.is_dir() else ([h] if is_volume_file(h) else [])
        if not out:
            raise InputError(
                "pattern matched no volumes", path=item, hint="check the glob (quote it for the shell)"
            )
        return out
    if not p.exists():
        raise InputError("no such file or directory", path=p)
    if p.is_dir():
        out = _expand_dir(p)
        if not out:
            raise InputError(
                "folder holds no CT volumes",
                path=p,
                hint="expected .nii/.nii.gz/.nrrd/.mha/.mhd files or DICOM series folders",
            )
        return out
    return [p]


def discover_inputs(items: Sequence[str]) -> list[str]:
    """Files, directories (recursive; a folder holding a DICOM series is one input), globs and ``@list.txt``
    -> sorted unique paths. Explicit files are kept even with unknown extensions (they fail later, recorded)."""
    found: dict[str, None] = {}
    for item in items:
        for p in _expand(str(item), None):
            found.setdefault(str(p), None)
    return sorted(found)

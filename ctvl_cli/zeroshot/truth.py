"""Ground-truth label tables (CT-RATE layout: scan id column, then one 0/1 column per finding) and scan-name
matching shared by ``zeroshot eval``, ``finetune probe`` and training validation."""

from __future__ import annotations

import csv
from pathlib import Path

from ctvl_cli.errors import InputError

_EXTS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".npz", ".dcm")


def scan_key(name: str) -> str:
    """File name without folder and image extension: 'a/b/train_1_a_1.nii.gz' -> 'train_1_a_1'."""
    base = Path(str(name).strip()).name
    low = base.lower()
    for ext in _EXTS:
        if low.endswith(ext):
            return base[: -len(ext)]
    return base


def read_label_table(path: str | Path) -> tuple[list[str], dict[str, list[int]]]:
    """-> (finding names, {scan_key: [0/1 ...]})."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            "labels table not found", path=p, hint="CSV: VolumeName, then one 0/1 column per finding"
        )
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"unreadable CSV ({e})", path=p) from None
    if len(rows) < 2 or len(rows[0]) < 2:
        raise InputError("labels table needs a header and at least one row", path=p)
    names = [c.strip() for c in rows[0][1:]]
    table: dict[str, list[int]] = {}
    for ln, r in enumerate(rows[1:], start=2):
        if not r or not r[0].strip():
            continue
        vals = r[1:]
        if len(vals) != len(names):
            raise InputError(f"line {ln}: expected {len(names)} label values, got {len(vals)}", path=p)
        try:
            v = [int(float(x)) for x in vals]
        except ValueError:
            raise InputError(f"line {ln}: labels must be 0 or 1", path=p) from None
        if any(x not in (0, 1) for x in v):
            raise InputError(f"line {ln}: labels must be 0 or 1", path=p)
        k = scan_key(r[0])
        if k in table:
            raise InputError(f"line {ln}: duplicate scan {r[0].strip()!r}", path=p)
        table[k] = v
    return names, table

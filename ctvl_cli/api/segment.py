"""`ctvl segment-organs`: organ masks of CT scans (builtin classical backend or TotalSegmentator), written per scan
as a multilabel NIfTI on the input grid, a label-map JSON, optional one-file-per-organ masks and a PNG preview,
plus a table of organ volumes. A bad input is recorded and skipped; the batch goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctvl_cli.errors import CtvlError, UsageError

BACKENDS = ("auto", "builtin", "totalsegmentator")


@dataclass
class ScanResult:
    name: str
    source: str
    status: str  # ok | failed
    backend: str = ""
    organs: dict[str, tuple[int, float]] = field(default_factory=dict)  # organ -> (voxels, mL)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class SegmentResult:
    backend: str
    out: str
    scans: list[ScanResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # run-level warnings (e.g. backend fallback)

    @property
    def failures(self) -> list[ScanResult]:
        return [s for s in self.scans if s.status == "failed"]


def choose_backend(backend: str) -> tuple[str, str | None]:
    """-> (backend to use, a warning when ``auto`` fell back to ``builtin``)."""
    from ctvl_cli.segment import totalseg

    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}", hint=f"one of {', '.join(BACKENDS)}")
    if backend == "builtin":
        return "builtin", None
    if backend == "totalsegmentator":
        totalseg.require()
        return "totalsegmentator", None
    reason = totalseg.unavailable_reason()
    if reason is None:
        return "totalsegmentator", None
    return (
        "builtin",
        f"TotalSegmentator not available ({reason}); using the builtin backend (hint: {totalseg.GET_WEIGHTS_HINT})",
    )


def segment_volume(vol, *, backend: str = "builtin", organs: list[str] | None = None, fast: bool = False):
    """One loaded volume -> :class:`~ctvl_cli.segment.labels.Segmentation` (``backend`` already chosen)."""
    from ctvl_cli.segment.builtin import segment_builtin
    from ctvl_cli.segment.labels import Segmentation, organ_labels

    if backend == "builtin":
        return segment_builtin(vol, organs)
    from ctvl_cli.segment import totalseg

    ts, affine = totalseg.run_total(vol.source, fast=fast)
    labels = totalseg.map_total_labels(totalseg.to_volume_grid(ts, affine, vol))
    lab = organ_labels()
    want = list(organs) if organs is not None else list(lab)
    if "body" in want:
        body = segment_builtin(vol, ["body"]).labels > 0
        labels[(labels == 0) & body] = lab["body"]
    keep = np.isin(labels, [lab[o] for o in want])
    labels = np.where(keep, labels, 0).astype(np.uint8)
    seg = Segmentation(labels=labels, organs=want, backend="totalsegmentator")
    counts = seg.voxel_counts()
    seg.warnings = [f"{o} not found: not in the field of view?" for o in want if counts.get(o, 0) == 0]
    return seg


def segment_organs(
    *,
    inputs: Sequence[str],
    out: str | Path,
    backend: str = "auto",
    organs: str | Sequence[str] | None = None,
    split: bool = False,
    preview: bool = False,
    fast: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SegmentResult:
    """Segment every input into ``out``. Failed inputs are recorded (status ``failed``), never raised."""
    from ctvl_cli.api.embed import _display_name, _one_line
    from ctvl_cli.io.discover import discover_inputs
    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.segment.io import MAP_SUFFIX, SEG_SUFFIX, write_json, write_nifti
    from ctvl_cli.segment.labels import label_map_record, organ_labels, resolve_organs

    if not inputs:
        raise UsageError("nothing to segment", hint="pass scan files, folders, globs or @list.txt")
    want = resolve_organs(organs)
    chosen, note = choose_backend(backend)
    if fast and chosen == "builtin" and backend == "builtin":
        raise UsageError("--fast applies to the totalsegmentator backend only")
    paths = discover_inputs(list(inputs))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = SegmentResult(backend=chosen, out=str(out_dir), notes=[note] if note else [])
    if on_start:
        on_start(len(paths))
    lab = organ_labels()
    for p in paths:
        name = _display_name(p)
        t0 = time.perf_counter()
        try:
            vol = load_volume(p)
            seg = segment_volume(vol, backend=chosen, organs=want, fast=fast)
            ml = float(np.prod(vol.spacing)) / 1000.0
            counts = seg.voxel_counts()
            item = ScanResult(
                name, p, "ok", chosen, {o: (n, n * ml) for o, n in counts.items()}, warnings=seg.warnings
            )
            seg_path = out_dir / f"{name}{SEG_SUFFIX}"
            write_nifti(seg_path, seg.labels, vol.affine)
            map_path = out_dir / f"{name}{MAP_SUFFIX}"
            write_json(map_path, label_map_record(seg.organs, backend=chosen, source=str(Path(p).resolve())))
            item.files += [str(seg_path), str(map_path)]
            if split:
                for o in seg.organs:
                    op = out_dir / f"{name}_{o}.nii.gz"
                    write_nifti(op, seg.mask(o), vol.affine)
                    item.files.append(str(op))
            if preview:
                from ctvl_cli.segment.preview import write_preview

                pp = out_dir / f"{name}_preview.png"
                write_preview(pp, vol, seg.labels)
                item.files.append(str(pp))
            assert set(item.organs) <= set(lab)
        except KeyboardInterrupt:
            raise
        except CtvlError as e:
            item = ScanResult(name, p, "failed", chosen, error=e.one_line())
        except Exception as e:  # one bad scan never ends the batch
            item = ScanResult(name, p, "failed", chosen, error=f"{p}: {_one_line(e)}")
        item.seconds = time.perf_counter() - t0
        res.scans.append(item)
        if on_progress:
            on_progress(1)
    return res

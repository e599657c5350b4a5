"""ctvl's organ label map (``organs.yaml``), organ-name resolution and the result type of every backend.

Pure numpy + PyYAML: importing this module does not import torch or SimpleITK.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from ctvl_cli.errors import UsageError

LABEL_MAP_FORMAT = "ctvl-organs/1"


@functools.lru_cache(maxsize=1)
def organ_table() -> dict:
    import yaml

    return yaml.safe_load(resources.files("ctvl_cli.segment").joinpath("organs.yaml").read_text())


@functools.lru_cache(maxsize=1)
def totalseg_classes() -> dict[int, str]:
    """TotalSegmentator v2 ``total`` task: label value -> class name (117 classes)."""
    import yaml

    d = yaml.safe_load(resources.files("ctvl_cli.segment").joinpath("totalseg_total_v2.yaml").read_text())
    return {int(k): str(v) for k, v in d.items()}


def organ_labels() -> dict[str, int]:
    """Organ name -> label value, in label order."""
    return {v["name"]: int(k) for k, v in sorted(organ_table()["organs"].items())}


def organ_colors() -> dict[str, tuple[int, int, int]]:
    return {v["name"]: tuple(v["color"]) for v in organ_table()["organs"].values()}


def builtin_organs() -> list[str]:
    return [v["name"] for _, v in sorted(organ_table()["organs"].items()) if v.get("builtin")]


def groups() -> dict[str, list[str]]:
    return {k: list(v) for k, v in organ_table()["groups"].items()}


def resolve_organs(spec: str | Iterable[str] | None) -> list[str] | None:
    """``"lung,heart"`` -> ``["lung_left", "lung_right", "heart"]`` (groups expanded, order kept); None = all."""
    if spec is None:
        return None
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise UsageError("--organs is empty", hint=f"e.g. --organs lung,heart; known: {known_names()}")
    labels, grp = organ_labels(), groups()
    out: list[str] = []
    for n in names:
        members = grp.get(n, [n])
        for m in members:
            if m not in labels:
                raise UsageError(f"unknown organ {n!r}", hint=f"known: {known_names()}")
            if m not in out:
                out.append(m)
    return out


def known_names() -> str:
    return ", ".join([*organ_labels(), *groups()])


def region_names(present: Iterable[str]) -> list[str]:
    """Organs and groups that can be pooled given the organs present in a mask (``body`` is always usable)."""
    have = list(present)
    out = list(have)
    for g, members in groups().items():
        if len(members) > 1 and all(m in have for m in members) and g not in out:
            out.append(g)
    return out


@dataclass
class Segmentation:
    """Labels on the input grid (same shape and voxel order as the volume), the organ -> value map and what
    the backend noticed (warnings). ``organs`` lists the organs that were asked for (present or empty)."""

    labels: np.ndarray  # uint8, (i, j, k) of the input volume
    organs: list[str]
    backend: str
    warnings: list[str] = field(default_factory=list)

    def mask(self, organ: str) -> np.ndarray:
        """Boolean mask of an organ or group; ``body`` is every labelled voxel."""
        lab = organ_labels()
        if organ == "body":
            return self.labels > 0
        members = groups().get(organ, [organ])
        return np.isin(self.labels, [lab[m] for m in members])

    def voxel_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels.ravel(), minlength=max(organ_labels().values()) + 1)
        lab = organ_labels()
        out = {o: int(counts[lab[o]]) for o in self.organs if o != "body"}
        if "body" in self.organs:
            out["body"] = int(counts[1:].sum())
        return out


def label_map_record(organs: Iterable[str], *, backend: str, source: str) -> dict:
    """The JSON written beside a multilabel file: value -> organ for the organs asked for."""
    lab = organ_labels()
    return {
        "format": LABEL_MAP_FORMAT,
        "backend": backend,
        "source": source,
        "labels": {str(lab[o]): o for o in organs},
        "note": "body marks body voxels in no other organ; the body organ is every labelled voxel",
    }

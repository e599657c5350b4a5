"""Per-organ (region) embeddings: ``ctvl embed --regions auto|MASK_DIR``.

For each scan, organ masks (from the segmenter, or ``<scan>_organs.nii.gz`` + ``<scan>_labels.json`` in MASK_DIR
as ``segment-organs`` writes them) are taken through the model card's own preprocessing (same orientation,
spacing, crop and pad as the image; trilinear, so each input voxel holds the fraction of it inside the organ),
averaged onto the encoder's feature grid, and the model pools + projects the features under them
(``CTModel.encode_regions``). One embedding per (scan, organ) goes into the cache:

    kind  ``region:<organ>``      id ``region:<sha256(image id | organ | mask id)>``   name = the scan's name
    kind  ``region-set``          id ``regionset:<sha256(image id | mask id)>``          marks a scan as done

The mask id is a hash of the segmenter (backend, algorithm version) and the image for ``auto``, or of the mask
file's and label map's contents for MASK_DIR: new masks give new entries; the image entry is untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from ctvl_cli.errors import InputError

SET_KIND = "region-set"


def region_kind(organ: str) -> str:
    return f"region:{organ}"


def region_id(image_id: str, organ: str, mask_id: str) -> str:
    return "region:" + hashlib.sha256(f"{image_id}|{organ}|{mask_id}".encode()).hexdigest()[:40]


def set_id(image_id: str, mask_id: str) -> str:
    return "regionset:" + hashlib.sha256(f"{image_id}|{mask_id}".encode()).hexdigest()[:40]


REGION_GROUPS = ("lung",)  # groups pooled as one region besides the organs themselves


def all_region_names() -> list[str]:
    from ctvl_cli.segment.labels import organ_labels

    return [*organ_labels(), *REGION_GROUPS]


def latest_per_scan(ids: list[str], emb, recs: list[dict]):
    """Region entries of one organ from several mask sources: keep the newest entry per scan (source path)."""
    best: dict[str, int] = {}
    for i, r in enumerate(recs):
        j = best.get(r["source"])
        if j is None or r["created"] >= recs[j]["created"]:
            best[r["source"]] = i
    keep = sorted(best.values())
    return [ids[i] for i in keep], emb[keep] if len(keep) else emb[:0], [recs[i] for i in keep]


def check_region(region: str) -> str:
    """-> the cache kind of a region name; UsageError for unknown names."""
    from ctvl_cli.errors import UsageError

    if region not in all_region_names():
        raise UsageError(f"unknown region {region!r}", hint=f"one of {', '.join(all_region_names())}")
    return region_kind(region)


class RegionSource:
    """Where masks come from: ``auto`` (segment now; TotalSegmentator when available, else builtin) or a folder."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.note: str | None = None
        if spec == "auto":
            from ctvl_cli.api.segment import choose_backend
            from ctvl_cli.segment.builtin import ALGORITHM_VERSION

            self.backend, self.note = choose_backend("auto")
            self.version = ALGORITHM_VERSION if self.backend == "builtin" else "totalsegmentator-total"
            self.dir = None
        else:
            self.dir = Path(spec)
            if not self.dir.is_dir():
                raise InputError(
                    "--regions: not a folder of masks",
                    path=spec,
                    hint="auto, or the -o folder of `ctvl segment-organs`",
                )

    def mask_id(self, image_id: str, name: str) -> tuple[str, str]:
        """-> (mask id, where the masks come from)."""
        if self.dir is None:
            return f"auto:{self.backend}:{self.version}:{image_id}", f"auto ({self.backend})"
        from ctvl_cli.cache.identity import file_identity
        from ctvl_cli.segment.io import _map_path, find_mask

        p = find_mask(self.dir, name)
        if p is None:
            raise InputError(
                f"no mask for scan {name} in the folder", path=self.dir, hint=f"{name}_organs.nii.gz"
            )
        lm = _map_path(p)
        return f"file:{file_identity(str(p))}:{hashlib.sha256(lm.read_bytes()).hexdigest()[:16]}", str(p)

    def masks(self, vol, name: str) -> tuple[dict[str, np.ndarray], list[str]]:
        """organ/group name -> boolean mask on the volume's grid (only non-empty ones), and warnings."""
        from ctvl_cli.segment.labels import Segmentation, groups, organ_labels

        if self.dir is None:
            from ctvl_cli.api.segment import segment_volume

            seg = segment_volume(vol, backend=self.backend)
            organs, warnings = seg.organs, list(seg.warnings)
        else:
            from ctvl_cli.segment.io import find_mask, read_mask

            labels, lmap = read_mask(find_mask(self.dir, name), vol)
            lab = organ_labels()
            remap = np.zeros(256, np.uint8)
            for organ, v in lmap.items():
                remap[v] = lab[organ]
            seg = Segmentation(labels=remap[labels], organs=list(lmap), backend="file")
            organs, warnings = list(lmap), []
        out: dict[str, np.ndarray] = {}
        for o in organs:
            m = seg.mask(o)
            if m.any():
                out[o] = m
        for g in REGION_GROUPS:
            if all(m in out for m in groups()[g]):
                out[g] = seg.mask(g)
        return out, warnings


def mask_weights(vol, spec, masks: list[np.ndarray]):
    """Boolean masks on the volume grid -> float tensor (R, *spec.shape): the fraction of each preprocessed input
    voxel inside each mask, through exactly the image's geometry (orientation, spacing, crop, pad)."""
    import torch

    from ctvl_cli.io.volume import Volume
    from ctvl_cli.preprocess.engine import preprocess

    mspec = dataclasses.replace(
        spec,
        hu_window=(0.0, 1.0),
        output_range=(0.0, 1.0),
        pad_value=0.0,
        clip_before_resample=True,
        interpolation="trilinear",
    )
    out = [
        preprocess(Volume(array=m.astype(np.float32), affine=vol.affine, source=vol.source), mspec)[0]
        for m in masks
    ]
    return torch.stack(out) if out else torch.zeros((0, *spec.shape))


def embed_regions(
    *, store, key, model, spec, device, paths, source: RegionSource, result, item_cls, on_progress=None
):
    """Region embeddings of ``paths`` ([(path, image id)]) into ``store`` under ``key``; rows go to
    ``result.items`` (kind ``region:<organ>``), notes to ``result.warnings``. A failing scan is recorded."""
    import torch

    from ctvl_cli.api.embed import _display_name, _one_line
    from ctvl_cli.cache import EntryRecord
    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.preprocess.engine import preprocess

    names = all_region_names()
    for p, image_id in paths:
        name = _display_name(p)
        try:
            mid, msrc = source.mask_id(image_id, name)
            sid = set_id(image_id, mid)
            if store.contains(key, [sid]):
                ids = {region_id(image_id, o, mid): o for o in names}
                for rid in sorted(store.contains(key, list(ids)), key=lambda r: names.index(ids[r])):
                    o = ids[rid]
                    result.items.append(item_cls(f"{name}:{o}", p, region_kind(o), rid, "cached"))
                continue
            vol = load_volume(p)
            masks, warnings = source.masks(vol, name)
            result.warnings += [f"{name}: {w}" for w in warnings]
            organs = list(masks)
            w = mask_weights(vol, spec, [masks[o] for o in organs])
            keep = [i for i, o in enumerate(organs) if float(w[i].sum()) > 0]
            for i, o in enumerate(organs):
                if i not in keep:
                    result.warnings.append(f"{name}: {o} lies outside the model's input crop; no embedding")
            x = preprocess(vol, spec, device="cpu")
            recs = []
            if keep:
                with torch.inference_mode():
                    emb = model.encode_regions(x[None].to(device), w[keep][None].to(device))[0]
                emb = emb.float().cpu().numpy()
                for j, i in enumerate(keep):
                    o, e = organs[i], emb[j]
                    if not np.isfinite(e).all():
                        result.warnings.append(f"{name}: {o}: non-finite region embedding; skipped")
                        continue
                    rid = region_id(image_id, o, mid)
                    recs.append(
                        EntryRecord(
                            id=rid,
                            kind=region_kind(o),
                            name=name,
                            source=str(Path(p).resolve()),
                            embedding=e,
                            shape=vol.shape,
                            spacing=vol.spacing,
                        )
                    )
                    result.items.append(item_cls(f"{name}:{o}", p, region_kind(o), rid, "embedded"))
            dim = (
                recs[0].embedding.shape[0] if recs else int(store.models()[key].get("dim") or model.embed_dim)
            )
            recs.append(
                EntryRecord(
                    id=sid, kind=SET_KIND, name=name, source=msrc, embedding=np.zeros(dim, np.float32)
                )
            )
            store.put(key, records=recs)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # one scan's masks never end the batch
            result.items.append(item_cls(f"{name}:regions", p, "regions", image_id, "failed", _one_line(e)))
        if on_progress:
            on_progress(1)

"""`ctvl embed`: volumes and report texts to embeddings, stored in the HDF5 cache.

Pipeline: discover inputs -> shard -> identity (content hash, memoised) -> skip cached -> parallel
decode + preprocess (DataLoader workers on CPU; on a GPU the volume is preprocessed on the device)
-> batched encoder forward -> journaled cache writes (crash-safe) -> commit.
A bad input is recorded and skipped; the batch continues. Ctrl-C commits what was computed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ctvl_cli import __version__
from ctvl_cli.errors import CtvlError, UsageError

DEFAULT_MODEL = "ctvl-phantom"


@dataclass
class ItemResult:
    name: str
    source: str
    kind: str  # image | text
    id: str | None
    status: str  # embedded | cached | failed
    error: str | None = None


@dataclass
class EmbedResult:
    model: str
    model_key: str
    cache: str
    items: list[ItemResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for it in self.items if it.status == status)

    @property
    def failures(self) -> list[ItemResult]:
        return [it for it in self.items if it.status == "failed"]


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """Parse ``i/n`` (0 <= i < n). Shards are disjoint and deterministic: item k of the sorted input list
    belongs to shard ``k % n``."""
    if spec is None:
        return None
    try:
        i_s, n_s = spec.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise UsageError(f"invalid --shard {spec!r}", hint="use i/n with 0 <= i < n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"invalid --shard {spec!r}", hint="use i/n with 0 <= i < n, e.g. 0/4")
    return i, n


def _one_line(e: BaseException) -> str:
    if isinstance(e, CtvlError):
        return e.one_line()
    return " ".join(f"{type(e).__name__}: {e}".split())


class _VolumeDataset:
    """Map-style dataset: decode (+ preprocess on CPU) one input; never raises, returns an error instead."""

    def __init__(self, paths: Sequence[str], spec, preprocess_here: bool) -> None:
        self.paths, self.spec, self.preprocess_here = list(paths), spec, preprocess_here

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from ctvl_cli.io.volume import load_volume
        from ctvl_cli.preprocess.engine import preprocess

        try:
            vol = load_volume(self.paths[i])
            meta = (tuple(int(s) for s in vol.shape), tuple(float(s) for s in vol.spacing))
            if self.preprocess_here:
                return i, preprocess(vol, self.spec, device="cpu"), meta, None
            return i, vol, meta, None
        except Exception as e:  # recorded per item; the batch goes on
            return i, None, None, _one_line(e)


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def _collate(batch):
    return batch


def embed(
    *,
    inputs: Sequence[str] = (),
    reports: str | Path | None = None,
    model: str | None = None,
    cache: str | Path,
    weights: str | None = None,
    batch_size: int = 4,
    workers: int = 0,
    device: str = "auto",
    shard: str | None = None,
    regions: str | None = None,
    commit_every: int = 64,
    command_line: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> EmbedResult:
    """Embed volumes (and report texts) into the HDF5 cache, skipping what is cached.

    Args:
        inputs: files, directories (recursive), globs or ``@list.txt``.
        reports: a CSV of report texts (see ``ctvl_cli.api.reports``).
        model: registry name, ``hf-hub:`` name or local path; default ``ctvl-phantom``.
        cache: the HDF5 cache file (created if missing).
        weights: explicit weights file (overrides the registry's resolution).
        batch_size: volumes per encoder forward.
        workers: parallel decode/preprocess processes (0 = in the main process).
        device: ``auto | cpu | cuda | cuda:N``.
        shard: ``i/n``: only item k with ``k % n == i`` of the sorted inputs (and of the report rows).
        regions: ``auto`` or a folder of ``segment-organs`` masks: also store one embedding per (scan, organ)
            (see ``ctvl_cli.api.regions``). Needs a model whose card lists the ``feature_map`` capability.
        commit_every: fold the write-ahead journal into the HDF5 file every this many new entries.
    Returns:
        An :class:`EmbedResult` listing every input's status. Failed inputs do not raise.
    """
    import numpy as np
    import torch

    from ctvl_cli.api.reports import read_reports
    from ctvl_cli.cache import EmbeddingCache, EntryRecord, file_identity, model_key, text_identity
    from ctvl_cli.io.discover import discover_inputs
    from ctvl_cli.models.factory import create_model_and_transforms, resolve_card_and_weights, resolve_device

    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    if workers < 0:
        raise UsageError(f"--workers must be >= 0, got {workers}")
    if not inputs and reports is None:
        raise UsageError("nothing to embed", hint="pass volume paths and/or --reports reports.csv")
    t0 = time.perf_counter()
    sh = parse_shard(shard)
    paths = discover_inputs(list(inputs)) if inputs else []
    rows = read_reports(reports) if reports is not None else []
    if sh is not None:
        paths = [p for k, p in enumerate(paths) if k % sh[1] == sh[0]]
        rows = [r for k, r in enumerate(rows) if k % sh[1] == sh[0]]

    name = model or DEFAULT_MODEL
    card, weights_path, weights_sha = resolve_card_and_weights(name, weights=weights)
    dev = resolve_device(device)
    if rows and not card.has_text:
        raise UsageError(
            f"model {card.name} has no text encoder", hint="use a vision-language model for --reports"
        )
    key = model_key(card=card.to_dict(), weights_sha256=weights_sha, preprocess=card.preprocess.to_dict())
    result = EmbedResult(model=card.name, model_key=key, cache=str(cache))
    region_src = None
    if regions is not None:
        from ctvl_cli.api.regions import RegionSource

        if "feature_map" not in card.capabilities:
            raise UsageError(f"model {card.name} exposes no spatial feature map", hint="--regions needs one")
        if not paths:
            raise UsageError("--regions needs volumes", hint="pass scan paths")
        region_src = RegionSource(regions)
        if region_src.note:
            result.warnings.append(region_src.note)
    if on_start:
        on_start(len(paths) * (2 if regions else 1) + len(rows))

    with EmbeddingCache.open(cache, writable=True) as store:
        store.register_model(
            key,
            name=card.name,
            card=card.to_dict(),
            weights_sha256=weights_sha,
            preprocess=card.preprocess.to_dict(),
        )
        store.start_run(
            {
                "ctvl_version": __version__,
                "model": card.name,
                "device": str(dev),
                "batch_size": batch_size,
                "workers": workers,
                "shard": shard or "",
                "command": command_line or " ".join(sys.argv),
                "host": os.uname().nodename,
            }
        )
        # ---- identities and what is already cached ----------------------------------------------------------
        todo_paths: list[tuple[str, str]] = []
        for p in paths:
            try:
                ident = file_identity(p, memo=store.identity_memo)
            except Exception as e:
                result.items.append(ItemResult(Path(p).name, p, "image", None, "failed", _one_line(e)))
                if on_progress:
                    on_progress(1)
                continue
            todo_paths.append((p, ident))
        cached = store.contains(key, [i for _, i in todo_paths]) if todo_paths else set()
        pending: list[tuple[str, str]] = []
        for p, ident in todo_paths:
            if ident in cached:
                result.items.append(ItemResult(_display_name(p), p, "image", ident, "cached"))
                if on_progress:
                    on_progress(1)
            else:
                pending.append((p, ident))
        text_ids = [text_identity(r.text) for r in rows]
        cached_t = store.contains(key, text_ids) if rows else set()
        pending_rows = []
        for r, ident in zip(rows, text_ids):
            if not r.text:
                result.items.append(
                    ItemResult(
                        r.id,
                        str(reports),
                        "text",
                        None,
                        "failed",
                        f"{reports}: line {r.line}: empty report text",
                    )
                )
            elif ident in cached_t:
                result.items.append(ItemResult(r.id, str(reports), "text", ident, "cached"))
            else:
                pending_rows.append((r, ident))
                continue
            if on_progress:
                on_progress(1)

        if not pending and not pending_rows and region_src is None:
            result.elapsed_s = time.perf_counter() - t0
            return result

        mdl, preprocess_fn, tokenizer, _ = create_model_and_transforms(name, weights=weights_path, device=dev)
        since_commit = 0
        try:
            # ---- volumes --------------------------------------------------------------------------------------
            if pending:
                preprocess_here = dev.type == "cpu"
                ds = _VolumeDataset([p for p, _ in pending], card.preprocess, preprocess_here)
                # one item per loader task (load balancing across workers); model batches are assembled here
                loader = torch.utils.data.DataLoader(
                    ds,
                    batch_size=1,
                    num_workers=workers,
                    collate_fn=_collate,
                    worker_init_fn=_worker_init if workers else None,
                    persistent_workers=False,
                    prefetch_factor=2 if workers else None,
                )

                def flush(batch: list) -> int:
                    ok = [(i, x, meta) for i, x, meta, err in batch if err is None]
                    for i, _, _, err in batch:
                        if err is not None:
                            p, ident = pending[i]
                            result.items.append(
                                ItemResult(_display_name(p), p, "image", ident, "failed", err)
                            )
                    if not ok:
                        return 0
                    if preprocess_here:
                        xb = torch.stack([x for _, x, _ in ok]).to(dev)
                    else:
                        xb = torch.stack([preprocess_fn(x) for _, x, _ in ok]).to(dev)
                    with torch.inference_mode():
                        emb = mdl.encode_image(xb).float().cpu().numpy()
                    recs = []
                    for (i, _, meta), e in zip(ok, emb):
                        p, ident = pending[i]
                        if not np.isfinite(e).all():
                            result.items.append(
                                ItemResult(
                                    _display_name(p),
                                    p,
                                    "image",
                                    ident,
                                    "failed",
                                    f"{p}: model produced a non-finite embedding",
                                )
                            )
                            continue
                        recs.append(
                            EntryRecord(
                                id=ident,
                                kind="image",
                                name=_display_name(p),
                                source=str(Path(p).resolve()),
                                embedding=e,
                                shape=meta[0],
                                spacing=meta[1],
                            )
                        )
                        result.items.append(ItemResult(_display_name(p), p, "image", ident, "embedded"))
                    if recs:
                        store.put(key, records=recs)
                    return len(recs)

                buf: list = []
                for item in loader:
                    buf.extend(item)
                    if len(buf) >= batch_size:
                        since_commit += flush(buf)
                        if on_progress:
                            on_progress(len(buf))
                        buf = []
                    if since_commit >= commit_every:
                        store.commit()
                        since_commit = 0
                if buf:
                    since_commit += flush(buf)
                    if on_progress:
                        on_progress(len(buf))
            # ---- report texts ---------------------------------------------------------------------------------
            for s in range(0, len(pending_rows), max(batch_size, 16)):
                chunk = pending_rows[s : s + max(batch_size, 16)]
                tok = tokenizer([r.text for r, _ in chunk])
                with torch.inference_mode():
                    emb = (
                        mdl.encode_text(tok["input_ids"].to(dev), tok["attention_mask"].to(dev))
                        .float()
                        .cpu()
                        .numpy()
                    )
                recs = [
                    EntryRecord(
                        id=ident, kind="text", name=r.id, source=str(Path(reports).resolve()), embedding=e
                    )
                    for (r, ident), e in zip(chunk, emb)
                ]
                store.put(key, records=recs)
                result.items.extend(
                    ItemResult(r.id, str(reports), "text", ident, "embedded") for r, ident in chunk
                )
                if on_progress:
                    on_progress(len(chunk))
            # ---- per-organ region embeddings --------------------------------------------------------------------
            if region_src is not None:
                from ctvl_cli.api.regions import embed_regions

                failed = {it.source for it in result.items if it.kind == "image" and it.status == "failed"}
                embed_regions(
                    store=store,
                    key=key,
                    model=mdl,
                    spec=card.preprocess,
                    device=dev,
                    paths=[(p, i) for p, i in todo_paths if p not in failed],
                    source=region_src,
                    result=result,
                    item_cls=ItemResult,
                    on_progress=on_progress,
                )
        except KeyboardInterrupt:
            result.interrupted = True
            store.commit()
            raise
        store.commit()
    result.elapsed_s = time.perf_counter() - t0
    return result


def _display_name(p: str) -> str:
    name = Path(p).name
    for ext in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name

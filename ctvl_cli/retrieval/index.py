"""FAISS indexes over L2-normalised embeddings (inner product = cosine).

Automatic choice (``kind="auto"``) from the number of vectors n, the dimension d and a memory budget:
  * n <= 100,000: ``Flat`` (exact);
  * larger: ``IVF{nlist},PQ{m}x8,Refine(SQ8)`` with nlist ~ sqrt(n) (a power of two, trained on 64 nlist
    points), m = the largest divisor of d with d/m >= 4 and m <= 64 (e.g. 64 bytes per 512-d vector), nprobe =
    max(16, nlist/16), and the top 64 k PQ candidates (for k results) re-ranked with 8-bit scalar-quantised copies (d bytes per
    vector); without room for those copies in the budget, plain ``IVF{nlist},PQ{m}x8``.
  HNSW (``--kind hnsw``: ``HNSW32,Flat``) searches fast but builds slowly on CPU (about 60 s per 50k 512-d vectors
  on 2 cores, so ~30 min for 1M) and has no GPU build, so it is never chosen automatically.

Index directory: ``index.faiss`` (always saved as a CPU index) and ``index.json`` (the sidecar: ids, names,
sources, report texts (``--reports``), model name/key/card hash, FAISS factory string, search parameters, dimension, ctvl version).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctvl_cli.errors import InputError, UsageError

FLAT_MAX = 100_000
SIDECAR = "index.json"
INDEX_FILE = "index.faiss"
KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")


def faiss_module():
    try:
        import faiss
    except ImportError:
        raise UsageError(
            "FAISS is not installed", hint="pip install 'ctvl[cpu]' (faiss-cpu) or 'ctvl[gpu]' (faiss-gpu)"
        ) from None
    return faiss


def gpu_count() -> int:
    faiss = faiss_module()
    try:
        return int(faiss.get_num_gpus())  # a GPU build on a machine without a GPU reports 0
    except AttributeError:
        return 0


def _pow2(x: float) -> int:
    return int(2 ** round(math.log2(max(x, 1))))


def choose(n: int, d: int, *, kind: str = "auto", memory_budget: float = 8e9) -> tuple[str, dict[str, int]]:
    """-> (FAISS factory string, search parameters)."""
    if kind not in KINDS:
        raise UsageError(f"unknown index kind {kind!r}", hint=", ".join(KINDS))
    nlist = max(1, min(_pow2(math.sqrt(max(n, 1))), max(1, n // 39)))
    nprobe = int(min(nlist, max(16, nlist // 16)))
    if kind == "auto":
        kind = "flat" if n <= FLAT_MAX else "ivfpq"
    if kind == "flat":
        return "Flat", {}
    if kind == "hnsw":
        return "HNSW32,Flat", {"efSearch": int(min(512, max(64, 16 * math.log2(max(n, 2)))))}
    if kind == "ivf":
        return f"IVF{nlist},Flat", {"nprobe": nprobe}
    m = max(mm for mm in range(1, 65) if d % mm == 0 and d // mm >= 4) if d >= 4 else 1
    if n * (d + m) * 1.1 <= memory_budget:  # room for 8-bit scalar-quantised copies: re-rank PQ candidates
        return f"IVF{nlist},PQ{m}x8,Refine(SQ8)", {"nprobe": nprobe, "k_factor_rf": 64}
    return f"IVF{nlist},PQ{m}x8", {"nprobe": nprobe}


def _set_params(index, params: dict[str, int]) -> None:
    faiss = faiss_module()
    if not params:
        return
    ps = faiss.ParameterSpace()
    for k, v in params.items():
        ps.set_index_parameter(index, k, v)


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def build(emb: np.ndarray, factory: str, params: dict[str, int], *, gpu: bool = False, seed: int = 0):
    """Train (if needed) and fill an index with L2-normalised ``emb``. Returns a CPU index."""
    faiss = faiss_module()
    x = l2n(emb)
    d = x.shape[1]
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    if gpu and not factory.startswith("HNSW"):
        res = faiss.StandardGpuResources()
        work = faiss.index_cpu_to_gpu(res, 0, index)
    else:
        work = index
    if not work.is_trained:
        rng = np.random.default_rng(seed)
        ntrain = min(len(x), max(64 * _nlist(factory), 10_000))
        sample = x[rng.choice(len(x), ntrain, replace=False)] if ntrain < len(x) else x
        work.train(sample)
    if factory.startswith("HNSW"):
        faiss.downcast_index(index).hnsw.efConstruction = 64
    for s in range(0, len(x), 65536):
        work.add(x[s : s + 65536])
    out = faiss.index_gpu_to_cpu(work) if work is not index else index
    _set_params(out, params)
    return out


def _nlist(factory: str) -> int:
    for part in factory.split(","):
        if part.startswith("IVF"):
            return int(part[3:])
    return 1


def add(index, emb: np.ndarray) -> None:
    x = l2n(emb)
    for s in range(0, len(x), 65536):
        index.add(x[s : s + 65536])


def search(index, q: np.ndarray, k: int, params: dict[str, int], *, gpu: bool = False):
    faiss = faiss_module()
    _set_params(index, params)
    idx = index
    if gpu and not isinstance(index, faiss.IndexHNSWFlat):
        idx = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        _set_params(idx, params)
    return idx.search(l2n(q), min(k, index.ntotal))


@dataclass
class Sidecar:
    model: str
    model_key: str
    model_name: str
    dim: int
    factory: str
    params: dict[str, int]
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    # report text per entry ("" when none), from `retrieve build --reports`; empty list: no reports attached
    reports: list[str] = field(default_factory=list)
    cache: str = ""
    ctvl_version: str = ""
    created: float = 0.0
    updated: float = 0.0
    metric: str = "inner product of L2-normalised embeddings (cosine)"
    region: str = ""  # organ of per-organ (region) embeddings; "" = whole scans

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1)


def save(dir_: str | Path, index, sidecar: Sidecar) -> None:
    faiss = faiss_module()
    d = Path(dir_)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (INDEX_FILE + ".tmp")
    faiss.write_index(index, str(tmp))
    sidecar.updated = time.time()
    stmp = d / (SIDECAR + ".tmp")
    stmp.write_text(sidecar.to_json())
    os.replace(tmp, d / INDEX_FILE)
    os.replace(stmp, d / SIDECAR)


def load(dir_: str | Path) -> tuple[Any, Sidecar]:
    d = Path(dir_)
    if not (d / SIDECAR).is_file() or not (d / INDEX_FILE).is_file():
        raise InputError("not a ctvl index directory", path=d, hint="build one with `ctvl retrieve build`")
    try:
        sc = Sidecar(**json.loads((d / SIDECAR).read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise InputError(f"unreadable index sidecar ({type(e).__name__})", path=d / SIDECAR) from None
    faiss = faiss_module()
    index = faiss.read_index(str(d / INDEX_FILE))
    if index.ntotal != len(sc.ids):
        raise InputError(
            f"index holds {index.ntotal} vectors but the sidecar lists {len(sc.ids)}",
            path=d,
            hint="rebuild it with `ctvl retrieve build --overwrite`",
        )
    return index, sc

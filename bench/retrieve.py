"""Retrieval and zero-shot scoring at scale.

1. FAISS: N (default 1,000,000) x 512 random-but-clustered L2-normalised vectors; build time, p50 single-query
   latency and recall@10 against exact search for the index `ctvl retrieve build` chooses automatically,
   with exact flat search measured in the same run as the baseline.
2. Zero-shot: 10,000 cached scans x 18 CT-RATE findings scored from an HDF5 cache by `ctvl zeroshot --cache`
   (whole command, process start included), against a per-scan, per-finding loop in the style of CT-CLIP's
   scripts/zero_shot.py run on the same cached embeddings.

    python bench/retrieve.py [--n 1000000] [--write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, machine, write_section


def clustered(n: int, d: int, *, seed: int, centers: int = 4096, spread: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(12345).normal(size=(centers, d)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x = c[rng.integers(0, centers, m)] + spread * rng.normal(size=(m, d)).astype(np.float32)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def p50_latency(index, q: np.ndarray, params: dict, n: int = 200) -> float:
    from ctvl_cli.retrieval import index as ix

    ix._set_params(index, params)
    ts = []
    for i in range(n):
        t = time.perf_counter()
        index.search(q[i : i + 1], 10)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def bench_faiss(n: int, d: int = 512) -> list[str]:
    import faiss

    from ctvl_cli.retrieval import index as ix

    x = clustered(n, d, seed=0)
    q = clustered(1000, d, seed=1)
    t = time.perf_counter()
    flat = ix.build(x, "Flat", {})
    t_flat = time.perf_counter() - t
    t = time.perf_counter()
    _, gt = flat.search(q, 10)
    t_gt = time.perf_counter() - t
    lat_flat = p50_latency(flat, q, {}, n=40)
    factory, params = ix.choose(n, d)
    t = time.perf_counter()
    auto = ix.build(x, factory, params)
    t_auto = time.perf_counter() - t
    _, got = ix.search(auto, q, 10, params)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(gt, got)]))
    lat_auto = p50_latency(auto, q, params)
    mem_auto = faiss.serialize_index(auto).nbytes / 2**20
    mem_flat = n * d * 4 / 2**20
    return [
        f"FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} threads; {n:,} x {d} clustered vectors "
        f"(4096 centres), 1,000 held-out queries; exact top-10 of all queries took {t_gt:.1f} s.",
        "",
        "| index | build s | p50 query ms (1 query) | recall@10 vs exact | size MiB | latency ratio vs flat |",
        "|---|---|---|---|---|---|",
        f"| exact `Flat` (baseline) | {t_flat:.1f} | {lat_flat * 1e3:.2f} | 1.000 | {mem_flat:.0f} | 1.00x |",
        f"| auto: `{factory}` {json.dumps(params)} | {t_auto:.1f} | {lat_auto * 1e3:.2f} | **{recall:.3f}** | "
        f"{mem_auto:.0f} | {lat_flat / lat_auto:.1f}x faster |",
    ]


def bench_zeroshot(n: int = 10_000) -> list[str]:
    from ctvl_cli.api.zeroshot import prompt_records, resolve_key
    from ctvl_cli.cache import EmbeddingCache, EntryRecord
    from ctvl_cli.phantom import finding_names
    from ctvl_cli.registry import get_card
    from ctvl_cli.zeroshot.labels import findings_from_names

    work = DATA / "_zs10k"
    work.mkdir(parents=True, exist_ok=True)
    # the default model's card (128-d) with seeded init weights: scoring cost depends only on the dimension
    spec = json.loads(get_card("ctvl-phantom").raw_json)
    spec.update({"name": "zs10k-bench", "weights": [{"kind": "init", "seed": 0}], "available": True})
    model_card = work / "card.json"
    model_card.write_text(json.dumps(spec))
    card, _, key = resolve_key(str(model_card))
    d = card.embed_dim
    cache = work / "emb.h5"
    labels = work / "labels.txt"
    names = finding_names()
    labels.write_text("\n".join(names) + "\n")
    rng = np.random.default_rng(0)
    img = rng.normal(size=(n, d)).astype(np.float32)
    if not cache.exists():
        fs = findings_from_names(names)
        prompts = sorted({t for f in fs for t in (*f.positive, *f.negative)})
        pe = rng.normal(size=(len(prompts), d)).astype(np.float32)
        with EmbeddingCache.open(cache, writable=True, commit_every=n) as store:
            store.register_model(
                key,
                name=card.name,
                card=card.to_dict(),
                weights_sha256=None,
                preprocess=card.preprocess.to_dict(),
            )
            recs = [
                EntryRecord(
                    id=f"scan{i:05d}",
                    kind="image",
                    name=f"scan{i:05d}",
                    source=f"/data/scan{i:05d}.nii.gz",
                    embedding=img[i],
                )
                for i in range(n)
            ]
            recs += prompt_records(prompts, pe, 14.3, dim=d)
            store.put(key, records=recs)
            store.commit(force=True)
    cmd = [
        sys.executable,
        "-m",
        "ctvl_cli",
        "zeroshot",
        "--cache",
        str(cache),
        "--labels",
        str(labels),
        "-f",
        "csv",
        "--model",
        str(model_card),
    ]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    t_cli = time.perf_counter() - t
    rows = r.stdout.count("\n") - 1
    from ctvl_cli.api.zeroshot import zeroshot

    t = time.perf_counter()
    res = zeroshot(cache=cache, labels=labels, model=str(model_card))
    t_api = time.perf_counter() - t
    # baseline: CT-CLIP zero_shot.py structure — per scan, per pathology: 2 logits, softmax, take p[0]
    pos, neg = rng.normal(size=(18, d)), rng.normal(size=(18, d))
    t = time.perf_counter()
    out = np.zeros((n, 18))
    for i in range(n):
        v = img[i] / np.linalg.norm(img[i])
        for k in range(18):
            logits = np.array([v @ pos[k], v @ neg[k]]) * 14.3
            e = np.exp(logits - logits.max())
            out[i, k] = (e / e.sum())[0]
    t_loop = time.perf_counter() - t
    return [
        f"Zero-shot from a cache: {n:,} cached scans x 18 findings ({d}-d embeddings, prompts and temperature cached); "
        f"{rows} rows written.",
        "",
        "| method | seconds | ratio vs baseline |",
        "|---|---|---|",
        f"| per-scan, per-finding loop over cached embeddings (CT-CLIP zero_shot.py structure, baseline) | {t_loop:.2f} | 1.00x |",
        f"| `ctvl zeroshot --cache emb.h5 --labels 18.txt --model card.json -f csv` (whole process incl. start-up) | {t_cli:.2f} | {t_loop / t_cli:.1f}x |",
        f"| `ctvl_cli.api.zeroshot.zeroshot(cache=...)` in-process | {t_api:.3f} | {t_loop / t_api:.0f}x |",
        "",
        f"Probabilities shape {res.probs.shape}.",
    ]


TITLES = {"faiss": "FAISS index at 1M vectors", "zeroshot": "Zero-shot scoring of 10k cached scans"}


def _write(part: str, cmd: str, text: str) -> None:
    write_section(f"retrieve-{part}", f"{TITLES[part]} — `bench/retrieve.py`", cmd, text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--only", choices=["faiss", "zeroshot"], default=None)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    head = f"Machine: {machine()}."
    if a.only in (None, "faiss"):
        text = "\n".join([head, "", *bench_faiss(a.n)])
        print(text)
        if a.write:
            _write("faiss", f"python bench/retrieve.py --n {a.n} --only faiss", text)
    if a.only in (None, "zeroshot"):
        text = "\n".join([head, "", *bench_zeroshot()])
        print(text)
        if a.write:
            _write("zeroshot", "python bench/retrieve.py --only zeroshot", text)


if __name__ == "__main__":
    main()

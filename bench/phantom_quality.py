"""Quality of the embedded default model `ctvl-phantom` on held-out phantoms (seed 3000; training used seeds
1000 and 2000): zero-shot AUROC per CT-RATE finding with CT-CLIP's prompt protocol, and report->image Recall@K
over 200 held-out pairs. Baseline in the same run: the same architecture, tokenizer and preprocessing with random
weights (what the numbers would be without training).

    python bench/phantom_quality.py [--n 400] [--pairs 200]

Prints a markdown table; with --write, replaces the section of bench/RESULTS.md between its markers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, machine, write_section

SEED = 3000


def _scores(model_ref: str, scans: Path, cache: Path, n_pairs: int):
    from ctvl_cli.api.embed import embed
    from ctvl_cli.api.reports import read_reports
    from ctvl_cli.api.zeroshot import cached_images, resolve_key, zeroshot
    from ctvl_cli.cache import EmbeddingCache, text_identity
    from ctvl_cli.metrics import auroc
    from ctvl_cli.phantom import finding_names
    from ctvl_cli.retrieval.metrics import recall_at_k
    from ctvl_cli.zeroshot.truth import read_label_table, scan_key

    labels_txt = cache.parent / "ctrate_labels.txt"
    labels_txt.write_text("\n".join(finding_names()) + "\n")
    t0 = time.perf_counter()
    embed(
        inputs=[str(scans)],
        reports=scans / "reports.csv",
        model=model_ref,
        cache=cache,
        workers=2,
        batch_size=8,
    )
    t_embed = time.perf_counter() - t0
    res = zeroshot(cache=cache, labels=labels_txt, model=model_ref)
    names, table = read_label_table(scans / "labels.csv")
    y = np.array([[table[scan_key(n)][names.index(f)] for f in res.findings] for n in res.names])
    aucs = {f: auroc(y[:, k], res.probs[:, k]) for k, f in enumerate(res.findings)}
    # report -> image over the first n_pairs held-out pairs (gallery = those scans)
    _, _, key = resolve_key(model_ref)
    ids, emb, recs = cached_images(cache, key)
    by_name = {scan_key(r["name"]): e for r, e in zip(recs, emb)}
    rows = read_reports(scans / "reports.csv")[:n_pairs]
    with EmbeddingCache.open(cache, writable=False) as store:
        t_ids, t_emb, _ = store.get(key, kind="text", ids=[text_identity(r.text) for r in rows])
    tby = dict(zip(t_ids, t_emb))
    txt = np.stack([tby[text_identity(r.text)] for r in rows])
    img = np.stack([by_name[scan_key(r.id)] for r in rows])
    rec = recall_at_k(txt, img, (1, 5, 10))
    prev = y.mean(0)
    return aucs, rec, t_embed, dict(zip(res.findings, prev))


def _generator_tag() -> str:
    """Fingerprint of the phantom generator's code and tables: held-out scans are regenerated when it changes."""
    import hashlib
    from importlib import resources

    h = hashlib.sha256()
    root = resources.files("ctvl_cli.phantom")
    for name in sorted(p.name for p in root.iterdir() if p.name.endswith((".py", ".yaml"))):
        h.update(name.encode() + root.joinpath(name).read_bytes())
    return h.hexdigest()[:8]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--write", action="store_true")
    ap.add_argument(
        "--model",
        default="ctvl-phantom",
        help="model to score (e.g. a training run directory); --write needs the default",
    )
    a = ap.parse_args()
    if a.write and a.model != "ctvl-phantom":
        ap.error("--write records the shipped ctvl-phantom only; compare other models without it")
    from ctvl_cli.phantom import write_phantoms
    from ctvl_cli.registry import get_card

    scans = DATA / f"phantom_heldout_{SEED}_{a.n}_{_generator_tag()}"
    if not (scans / "labels.csv").exists():
        write_phantoms(scans, n=a.n, seed=SEED, workers=2)
    out = DATA / "_quality"
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("*.h5"):
        f.unlink()
    card = get_card("ctvl-phantom")
    base = json.loads(card.raw_json)
    base.update({"name": "ctvl-phantom-random", "weights": [{"kind": "init", "seed": 0}], "available": True})
    base_path = out / "random.json"
    base_path.write_text(json.dumps(base))
    trained = _scores(a.model, scans, out / "trained.h5", a.pairs)
    # what the image embeddings carry, whatever the prompts: a linear probe (`ctvl finetune probe`) fitted on half
    # of the held-out embeddings and scored on the other half
    from ctvl_cli.train.probe import train_probe

    probe = train_probe(
        cache=out / "trained.h5",
        labels=scans / "labels.csv",
        out=out / "probe.safetensors",
        model=a.model,
        val_fraction=0.5,
    ).val_auroc
    random_ = _scores(str(base_path), scans, out / "random.h5", a.pairs)
    aucs, rec, t_embed, prev = trained
    raucs, rrec, _, _ = random_
    mean = float(np.nanmean(list(aucs.values())))
    rmean = float(np.nanmean(list(raucs.values())))
    weak = [f for f, v in aucs.items() if v < 0.8]
    lines = [
        f"Machine: {machine()}. Held-out phantoms: {a.n} scans, `ctvl phantom --seed {SEED}` (training used seeds "
        f"1000/2000), CT-RATE finding rates; embedding them took {t_embed:.0f} s.",
        "",
        f"| finding | prevalence | AUROC {a.model} | AUROC random-init baseline | linear probe AUROC |",
        "|---|---|---|---|---|",
    ]
    for f in aucs:
        lines.append(
            f"| {f} | {prev[f]:.3f} | {aucs[f]:.3f} | {raucs[f]:.3f} | {probe.get(f, float('nan')):.3f} |"
        )
    pmean = float(np.nanmean([probe.get(f, float("nan")) for f in aucs]))
    lines.append(f"| **mean (18 findings)** | | **{mean:.3f}** | {rmean:.3f} | {pmean:.3f} |")
    lines += [
        "",
        f"Report->image over {a.pairs} held-out pairs (gallery = those {a.pairs} scans): "
        + ", ".join(
            f"R@{k} **{v:.3f}** (baseline {rrec[k]:.3f}, chance {k / a.pairs:.3f})" for k, v in rec.items()
        ),
        "",
        f"Targets: mean AUROC >= 0.90 -> {'met' if mean >= 0.90 else 'NOT met'}; R@5 >= 0.5 -> "
        f"{'met' if rec[5] >= 0.5 else 'NOT met'}. Weak findings (AUROC < 0.80): {', '.join(weak) or 'none'}.",
        "",
        "AUROC columns: zero-shot with CT-RATE's prompt protocol over all held-out scans. Linear probe: "
        f"`ctvl finetune probe` on the trained model's embeddings of half of them ({len(aucs)} logistic regressions), "
        "scored on the other half: what the image embeddings carry whatever the prompts (not a zero-shot result).",
    ]
    text = "\n".join(lines)
    print(text)
    if a.write:
        title = "Embedded default model quality — `bench/phantom_quality.py`"
        write_section(
            "phantom_quality", title, f"python bench/phantom_quality.py --n {a.n} --pairs {a.pairs}", text
        )


if __name__ == "__main__":
    main()

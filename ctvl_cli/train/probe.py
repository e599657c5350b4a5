"""``finetune probe``: a multi-label linear probe (one logistic regression per finding, trained jointly) on cached
image embeddings; saved as a head that ``zeroshot --head`` applies.

Head file (safetensors): tensors ``weight`` (K, D) and ``bias`` (K,); metadata ``ctvl_head`` = JSON with the
finding names, the model name and cache model key (a head only applies to embeddings of that exact model),
the input normalisation (L2) and the validation AUROCs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctvl_cli.errors import InputError, UsageError


@dataclass
class Head:
    weight: np.ndarray
    bias: np.ndarray
    findings: list[str]
    model_key: str
    model_name: str
    meta: dict

    def predict(self, emb: np.ndarray) -> np.ndarray:
        from ctvl_cli.zeroshot.scoring import l2n

        z = l2n(np.asarray(emb, np.float64)) @ self.weight.T.astype(np.float64) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def load_head(path: str | Path) -> Head:
    p = Path(path)
    if not p.is_file():
        raise InputError("head file not found", path=p, hint="train one with `ctvl finetune probe`")
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="np") as f:
            meta = json.loads((f.metadata() or {})["ctvl_head"])
            w, b = f.get_tensor("weight"), f.get_tensor("bias")
    except Exception as e:
        raise InputError(f"not a ctvl probe head ({type(e).__name__})", path=p) from None
    return Head(w, b, list(meta["findings"]), meta["model_key"], meta["model_name"], meta)


@dataclass
class ProbeResult:
    out: str
    findings: list[str]
    n_train: int
    n_val: int
    val_auroc: dict[str, float]
    unmatched_labels: int
    unlabelled_scans: int

    @property
    def mean_val_auroc(self) -> float:
        v = [a for a in self.val_auroc.values() if a == a]
        return float(np.mean(v)) if v else float("nan")


def train_probe(
    *,
    cache: str | Path,
    labels: str | Path,
    out: str | Path,
    model: str | None = None,
    weights: str | None = None,
    val_fraction: float = 0.2,
    steps: int = 500,
    lr: float = 0.05,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> ProbeResult:
    import torch

    from ctvl_cli import __version__
    from ctvl_cli.api.zeroshot import cached_images, resolve_key
    from ctvl_cli.metrics import auroc
    from ctvl_cli.zeroshot.scoring import l2n
    from ctvl_cli.zeroshot.truth import read_label_table, scan_key

    if not 0.0 <= val_fraction < 1.0:
        raise UsageError("--val-fraction must be in [0, 1)")
    card, _, key = resolve_key(model, weights)
    names, table = read_label_table(labels)
    _, emb, recs = cached_images(cache, key)
    rows, ys = [], []
    for i, r in enumerate(recs):
        k = scan_key(r["name"]) if scan_key(r["name"]) in table else scan_key(r["source"])
        if k in table:
            rows.append(i)
            ys.append(table[k])
    if len(rows) < 4:
        raise InputError(
            f"only {len(rows)} cached scans have labels",
            path=labels,
            hint="the first column must name the embedded files (e.g. VolumeName)",
        )
    x = l2n(emb[rows].astype(np.float64))
    y = np.asarray(ys, np.float64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(rows))
    n_val = round(val_fraction * len(rows))
    va, tr = perm[:n_val], perm[n_val:]
    xt, yt = torch.tensor(x[tr], dtype=torch.float32), torch.tensor(y[tr], dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(x.shape[1], len(names))
    with torch.no_grad():
        lin.weight.normal_(0, 0.01, generator=g)
        prior = yt.mean(0).clamp(1e-3, 1 - 1e-3)
        lin.bias.copy_(torch.log(prior / (1 - prior)))
    opt = torch.optim.AdamW(lin.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(xt), yt)
        loss.backward()
        opt.step()
    w = lin.weight.detach().numpy()
    b = lin.bias.detach().numpy()
    val_auc = {}
    if n_val:
        z = x[va] @ w.T.astype(np.float64) + b
        val_auc = {n: round(auroc(y[va, k], z[:, k]), 4) for k, n in enumerate(names)}
    meta = {
        "findings": names,
        "model_key": key,
        "model_name": card.name,
        "dim": int(x.shape[1]),
        "input": "l2-normalised",
        "n_train": len(tr),
        "n_val": n_val,
        "val_auroc": val_auc,
        "ctvl_version": __version__,
        "labels": str(labels),
    }
    from safetensors.numpy import save_file

    outp = Path(out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {"weight": w.astype(np.float32), "bias": b.astype(np.float32)},
        str(outp),
        metadata={"ctvl_head": json.dumps(meta)},
    )
    matched = {scan_key(recs[i]["name"]) for i in rows} | {scan_key(recs[i]["source"]) for i in rows}
    return ProbeResult(
        out=str(outp),
        findings=names,
        n_train=len(tr),
        n_val=n_val,
        val_auroc=val_auc,
        unmatched_labels=sum(1 for k in table if k not in matched),
        unlabelled_scans=len(recs) - len(rows),
    )

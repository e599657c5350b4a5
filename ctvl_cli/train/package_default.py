"""Install a finished ``make train-default`` run as the embedded ``ctvl-phantom`` model:
``python -m ctvl_cli.train.package_default RUN_DIR``. Stores the weights in float16 (half the size in the wheel;
the model loads them into float32 parameters), copies the tokenizer into the package and writes the weights'
sha256, the training summary and ``available: true`` into the card."""

from __future__ import annotations

import json
import shutil
import sys
from importlib import resources
from pathlib import Path


def _save_half(src: Path, dst: Path) -> None:
    """Copy a safetensors file with its floating tensors in float16 (tensors outside float16's range stay)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = {}
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        for k in f.keys():
            t = f.get_tensor(k)
            fits = t.is_floating_point() and (t.numel() == 0 or float(t.abs().max()) < 6.0e4)
            out[k] = t.to(torch.float16) if fits else t
    save_file(out, str(dst), metadata=meta)


def package(run_dir: Path, *, root: Path | None = None) -> dict:
    """Install ``run_dir`` into the package at ``root`` (default: the installed ``ctvl_cli``)."""
    from ctvl_cli.registry.weights import sha256_file

    root = Path(str(resources.files("ctvl_cli"))) if root is None else Path(root)
    card_path = root / "registry" / "cards" / "ctvl-phantom.json"
    card = json.loads(card_path.read_text())
    run_card = json.loads((run_dir / "ctvl_card.json").read_text())
    # The vocabulary size follows the tokenizer learnt from the run's reports; everything else must match.
    run_arch = run_card["architecture"]
    arch = {
        **run_arch,
        "params": {**run_arch["params"], "vocab_size": card["architecture"]["params"]["vocab_size"]},
    }
    if arch != card["architecture"] or run_card["preprocess"] != card["preprocess"]:
        raise SystemExit(
            "run architecture/preprocessing differ from the ctvl-phantom card; update the card first"
        )
    # A run from scratch has its own tokenizer/ (learnt from its reports); a run that went on from the packaged
    # model reads the packaged tokenizer, which then stays as it is. Checked before anything is overwritten.
    own_tok = (run_dir / "tokenizer").is_dir()
    if not own_tok and run_card["text"]["tokenizer"] != card["text"]["tokenizer"]:
        raise SystemExit("the run has no tokenizer/ and does not use the packaged ctvl-phantom tokenizer")
    hist = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    best = max(hist, key=lambda r: r.get("zs_auroc", r.get("r2i_R@5", 0.0)))
    card["architecture"]["params"]["vocab_size"] = run_arch["params"]["vocab_size"]
    wdst = root / card["weights"][0]["path"]
    wdst.parent.mkdir(parents=True, exist_ok=True)
    _save_half(run_dir / "model.safetensors", wdst)
    if own_tok:
        tdst = root / "tokenizers" / card["text"]["tokenizer"]["name_or_path"]
        if tdst.exists():
            shutil.rmtree(tdst)
        shutil.copytree(run_dir / "tokenizer", tdst)
    card["weights"][0]["sha256"] = sha256_file(wdst)
    card["weights"][0]["size"] = wdst.stat().st_size
    card["available"] = True
    card["notes"] = (
        f"Trained by `make train-default`{'' if own_tok else ' (its last part, on from the earlier ones)'}: "
        f"epoch {best['epoch']} of {len(hist)}, step {best['step']}; "
        f"validation (200 phantoms, seed 2000): zero-shot mean AUROC {best.get('zs_auroc', float('nan')):.3f}, "
        f"report->image R@5 {best.get('r2i_R@5', float('nan')):.3f}. Held-out quality: bench/RESULTS.md."
    )
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return {"weights": str(wdst), "sha256": card["weights"][0]["sha256"], "size": wdst.stat().st_size}


if __name__ == "__main__":
    print(json.dumps(package(Path(sys.argv[1]))))

"""Install a finished ``make train-default`` run as the embedded ``ctvl-phantom`` model:
``python -m ctvl_cli.train.package_default RUN_DIR``. Copies the weights and tokenizer into the package and
writes their sha256, the training summary and ``available: true`` into the card."""

from __future__ import annotations

import json
import shutil
import sys
from importlib import resources
from pathlib import Path


def package(run_dir: Path) -> dict:
    from ctvl_cli.registry.weights import sha256_file

    root = Path(str(resources.files("ctvl_cli")))
    card_path = root / "registry" / "cards" / "ctvl-phantom.json"
    card = json.loads(card_path.read_text())
    run_card = json.loads((run_dir / "ctvl_card.json").read_text())
    if run_card["architecture"] != card["architecture"] or run_card["preprocess"] != card["preprocess"]:
        raise SystemExit(
            "run architecture/preprocessing differ from the ctvl-phantom card; update the card first"
        )
    wdst = root / card["weights"][0]["path"]
    wdst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "model.safetensors", wdst)
    tdst = root / "tokenizers" / card["text"]["tokenizer"]["name_or_path"]
    if tdst.exists():
        shutil.rmtree(tdst)
    shutil.copytree(run_dir / "tokenizer", tdst)
    hist = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    best = max(hist, key=lambda r: r.get("zs_auroc", r.get("r2i_R@5", 0.0)))
    card["weights"][0]["sha256"] = sha256_file(wdst)
    card["weights"][0]["size"] = wdst.stat().st_size
    card["available"] = True
    card["notes"] = (
        f"Trained by `make train-default`: epoch {best['epoch']} of {len(hist)}, step {best['step']}; "
        f"validation (200 phantoms, seed 2000): zero-shot mean AUROC {best.get('zs_auroc', float('nan')):.3f}, "
        f"report->image R@5 {best.get('r2i_R@5', float('nan')):.3f}. Held-out quality: bench/RESULTS.md."
    )
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return {"weights": str(wdst), "sha256": card["weights"][0]["sha256"], "size": wdst.stat().st_size}


if __name__ == "__main__":
    print(json.dumps(package(Path(sys.argv[1]))))

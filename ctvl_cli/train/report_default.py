"""The embedded report model ``ctvl-phantom-report`` (``make train-report-default``):

    python -m ctvl_cli.train.report_default init-lm TOKENIZER_DIR LM_DIR   # GPT-2 config sized to the tokenizer
    python -m ctvl_cli.train.report_default package RUN_DIR               # install a finished run in the package

The LM is a small GPT-2 (4 layers, width 192) trained from scratch on phantom reports; the projector reads the
frozen ``ctvl-phantom`` encoder. Packaging stores weights as float16 (loaded back as float32) to keep the package
small, and records the training summary in the report card.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

LM = {"n_embd": 192, "n_layer": 4, "n_head": 4, "n_positions": 512}


def init_lm(tokenizer_dir: Path, lm_dir: Path) -> dict:
    from transformers import AutoTokenizer, GPT2Config

    from ctvl_cli.reports.model import special_ids

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    lm_dir.mkdir(parents=True, exist_ok=True)
    ids = special_ids(tok)  # GPT2Config's defaults (50256) lie outside a small vocabulary
    GPT2Config(
        vocab_size=len(tok), bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"], **LM
    ).save_pretrained(str(lm_dir))
    tok.save_pretrained(str(lm_dir))
    return {"lm": str(lm_dir), "vocab_size": len(tok), **LM}


def package(run_dir: Path) -> dict:
    import torch

    from ctvl_cli.reports import model as rm

    dst = rm.packaged_dir()
    net, tok, card, _, _ = rm.load_dir(run_dir, device="cpu")
    if card["llm"]["train"] != "full":
        raise SystemExit("the embedded report model must carry its whole LM (--llm-train full)")
    hist = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    best = max(hist, key=lambda r: r.get("val_ce_f1", 0.0))
    card = dict(card)
    card["name"] = rm.DEFAULT_REPORT_MODEL
    card["encoder"] = {**card["encoder"], "model": "ctvl-phantom"}
    card["description"] = (
        "ctvl's embedded report generator: a small GPT-2 (4 layers, width 192) trained from scratch on phantom "
        "reports, with an attention-pooling projector over the frozen ctvl-phantom encoder's feature map. "
        "Phantoms only: it has never seen a real scan or a real report."
    )
    card["training"] = {
        **card["training"],
        "recipe": "make train-report-default",
        "best_epoch": best["epoch"],
        "val_ce_f1": best.get("val_ce_f1"),
        "val_loss": best.get("val_loss"),
    }
    if dst.exists():
        shutil.rmtree(dst)
    with torch.no_grad():
        rm.save_dir(dst, net, tok, card, llm_train="full", half=True)
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    return {"dir": str(dst), "bytes": size, "best_epoch": best["epoch"], "val_ce_f1": best.get("val_ce_f1")}


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "init-lm":
        print(json.dumps(init_lm(Path(args[0]), Path(args[1]))))
    elif cmd == "package":
        print(json.dumps(package(Path(args[0]))))
    else:
        raise SystemExit(f"unknown command {cmd!r}: init-lm | package")

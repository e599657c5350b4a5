"""Shared training plumbing: torchrun process groups, atomic checkpoints, run-directory model cards."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctvl_cli.errors import UsageError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: Any = None
    initialized: bool = False

    def close(self) -> None:
        if self.initialized:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()
            self.initialized = False


def init_dist(device: str = "auto") -> Dist:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1): NCCL with one GPU per process when
    CUDA is used, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch
    import torch.distributed as td

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank=rank, world=world, local_rank=local, device=dev, initialized=True)


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_safetensors(model, path: Path, *, metadata: dict[str, str] | None = None) -> str:
    from safetensors.torch import save_file

    sd = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata=metadata or {})
    os.replace(tmp, path)
    from ctvl_cli.registry.weights import sha256_file

    return sha256_file(path)


def write_run_card(
    out: Path, model, card_dict: dict, params: dict, *, source: str, pairs: str, note: str
) -> dict:
    """Write model.safetensors and ctvl_card.json so the run directory is a model (``--model RUN_DIR``)."""
    sha = save_safetensors(model, out / "model.safetensors", metadata={"source_model": source, "note": note})
    d = dict(card_dict)
    d["name"] = out.resolve().name
    d["description"] = f"Fine-tuned by `ctvl finetune clip` from {source} on {pairs} ({note})."
    d["architecture"] = {"arch": d["architecture"]["arch"], "params": params}
    d["weights"] = [{"kind": "local", "path": "model.safetensors", "sha256": sha}]
    d["available"] = True
    if (out / "tokenizer").is_dir():
        tok = dict(d["text"]["tokenizer"])
        tok.update({"kind": "hf", "name_or_path": "tokenizer"})
        d["text"] = {**d["text"], "tokenizer": tok}
    d.pop("notes", None)
    tmp = out / "ctvl_card.json.tmp"
    tmp.write_text(json.dumps(d, indent=2) + "\n")
    os.replace(tmp, out / "ctvl_card.json")
    return d


def parse_arch_params(items: list[str]) -> dict[str, Any]:
    """``["skip_stage=1", "widths=[8,16]"]`` -> ``{"skip_stage": 1, "widths": [8, 16]}`` (JSON values; a value that
    is not JSON stays a string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--arch-param {item!r} is not KEY=VALUE", hint="e.g. --arch-param skip_stage=1")
        try:
            out[key.strip()] = json.loads(val)
        except json.JSONDecodeError:
            out[key.strip()] = val
    return out


def parse_lr_mult(text: str | None) -> dict[str, float]:
    """``"text=0.05,tok=0.05"`` -> ``{"text": 0.05, "tok": 0.05}``."""
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, eq, val = item.partition("=")
        try:
            f = float(val)
        except ValueError:
            f = -1.0
        if not eq or not key.strip() or f < 0:
            raise UsageError(
                f"--lr-mult {item.strip()!r} is not PREFIX=FACTOR", hint="e.g. --lr-mult text=0.05"
            )
        out[key.strip()] = f
    return out


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    prog = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))


def set_lr(opt, lr: float) -> None:
    """Set every optimizer group's learning rate to ``lr`` times the group's ``lr_scale`` (1 when absent)."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


def epoch_order(n: int, seed: int, epoch: int, dist: Dist, per_step: int) -> list[int]:
    """Same permutation on every rank; rank r takes a strided share; truncated to whole optimizer steps."""
    import torch

    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    share = perm[dist.rank :: dist.world][: n // dist.world]
    return share[: (len(share) // per_step) * per_step]

"""Shared training plumbing: torchrun process groups, atomic checkpoints, run-directory model cards."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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

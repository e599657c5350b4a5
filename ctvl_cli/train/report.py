"""``finetune report``: train a report generator (projector, and the LM fully or through LoRA) on image–report
pairs, with the machinery of ``finetune clip``: AdamW with linear warm-up then cosine decay, AMP on CUDA only,
gradient accumulation, ``torchrun`` data parallelism, atomic checkpoints (every ``save_every`` steps, at each
epoch end and on Ctrl-C) from which ``--resume`` continues at the exact position in the epoch.

The image encoder is frozen (as in CT-CHAT, whose CTViT tokens are pre-encoded, and Merlin's report
generator), so its feature maps are computed once per scan at the start of a run and kept in
``RUN/features.npy`` (float16; recomputed when the pairs or the encoder change).

The run directory is a report model (``ctvl generate-report SCAN --model RUN``): ``report_card.json``,
``projector.safetensors``, ``tokenizer/`` and ``llm/`` or ``lora/`` (see ``ctvl_cli.reports.model``); the
exported weights are those of the best epoch by the validation metric (clinical-efficacy macro F1 of greedy
reports on ``--val-pairs``), else the last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ctvl_cli.errors import UsageError
from ctvl_cli.train.common import atomic_torch_save, epoch_order, init_dist, lr_at, set_lr

CKPT = "checkpoint.pt"


@dataclass
class ReportConfig:
    pairs: str
    llm: str
    model: str = "ctvl-phantom"  # the image encoder (registry name or run directory)
    weights: str | None = None
    tokenizer: str | None = None
    projector: str = "attn"
    queries: int = 32
    heads: int = 4
    pool_kernel: int = 2
    llm_train: str = "auto"  # auto | frozen | lora | full
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: list[str] | None = None
    max_len: int = 320
    epochs: int = 10
    batch_size: int = 8
    accum: int = 1
    lr: float = 1e-3
    llm_lr: float | None = None
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    val_pairs: str | None = None
    val_max: int = 64
    seed: int = 0
    save_every: int = 100
    max_steps: int | None = None
    image_root: str | None = None
    input_cache: str | None = None


@dataclass
class ReportResult:
    out: str
    epochs_done: int
    steps: int
    last_loss: float
    best_metric: float | None
    metric_name: str | None
    llm_train: str
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_step: int = 0
    interrupted: bool = False


def _features(encoder, pairs, spec, path: Path, key: str, *, workers: int, dev, emit, input_cache=None):
    """(N, C, d, h, w) float16 feature maps of the pairs' images, from ``path`` when it matches ``key``."""
    import numpy as np
    import torch

    from ctvl_cli.train.data import PairDataset, collate

    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()).get("key") == key:
        return torch.from_numpy(np.load(path))
    store = None
    if input_cache:
        from ctvl_cli.train.inputs import InputStore

        store = InputStore(input_cache, [p.image for p in pairs], spec)
        if store.missing():
            emit({"event": "prepare", "todo": len(store.missing()), "store": str(store.data_path)})
            store.fill(
                workers=workers, on_progress=lambda n, t: emit({"event": "prepare_step", "n": n, "of": t})
            )
    loader = torch.utils.data.DataLoader(
        PairDataset(pairs, spec, store=store), batch_size=8, num_workers=workers, collate_fn=collate
    )
    emit({"event": "features", "n": len(pairs)})
    out = []
    with torch.no_grad():
        for xs, *_ in loader:
            out.append(encoder.image_feature_map(xs.to(dev)).float().cpu().half())
    feats = torch.cat(out)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, feats.numpy())
    os.replace(tmp, path)
    meta.write_text(json.dumps({"key": key, "shape": list(feats.shape)}))
    return feats


def _feature_key(enc_key: str, pairs) -> str:
    from ctvl_cli.cache.identity import file_signature

    h = hashlib.sha256(enc_key.encode())
    for p in pairs:
        h.update(f"{os.path.abspath(p.image)}\0{file_signature(Path(p.image))}\n".encode())
    return h.hexdigest()[:20]


def _setup_llm(cfg: ReportConfig, tok, ids):
    """-> (llm, init kind, effective llm_train)."""
    from ctvl_cli.reports.model import load_llm

    llm, init = load_llm(cfg.llm, seed=cfg.seed)
    mode = cfg.llm_train
    if mode == "auto":
        mode = "full" if init == "config" else "frozen"
    if init == "config" and mode != "full":
        raise UsageError(
            f"--llm {cfg.llm} has no weights (random init): it must be trained with --llm-train full"
        )
    if len(tok) > llm.get_input_embeddings().num_embeddings:
        raise UsageError(
            f"the tokenizer has {len(tok)} tokens but the LM's vocabulary only {llm.get_input_embeddings().num_embeddings}",
            hint="use the LM's own tokenizer or a config with a larger vocab_size",
        )
    for k, v in (("bos_token_id", ids["bos"]), ("eos_token_id", ids["eos"]), ("pad_token_id", ids["pad"])):
        setattr(llm.config, k, v)
        if getattr(llm, "generation_config", None) is not None:
            setattr(llm.generation_config, k, v)
    if mode == "frozen":
        llm.requires_grad_(False)
    elif mode == "lora":
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise UsageError("--llm-train lora needs peft", hint="pip install 'ctvl[lora]'") from None
        lcfg = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_targets,
            task_type="CAUSAL_LM",
        )
        try:
            llm = get_peft_model(llm, lcfg)
        except ValueError as e:
            raise UsageError(
                f"LoRA: {e}", hint="name the LM's attention projections with --lora-targets"
            ) from None
    return llm, init, mode


def finetune_report(
    cfg: ReportConfig | None,
    *,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    epochs: int | None = None,
    max_steps: int | None = None,
    workers: int = 0,
    device: str = "auto",
    amp: bool = True,
    stop_after: int | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> ReportResult:
    import torch

    from ctvl_cli.api.zeroshot import resolve_key
    from ctvl_cli.models.factory import create_model, resolve_device
    from ctvl_cli.reports import model as rm
    from ctvl_cli.train.data import read_pairs

    out = Path(out)
    emit = on_event or (lambda e: None)
    ckpt_path = out / CKPT
    state = None
    if ckpt_path.exists():
        if resume:
            state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            cfg = ReportConfig(**state["config"])
        elif not overwrite:
            raise UsageError(
                "run directory already holds a checkpoint",
                path=out,
                hint="--resume to continue it, or --overwrite",
            )
    elif resume:
        raise UsageError(
            "nothing to resume: no checkpoint.pt", path=out, hint="start the run without --resume"
        )
    if cfg is None:
        raise UsageError("--pairs and --llm are required for a new run")
    if cfg.projector not in rm.PROJECTORS:
        raise UsageError(f"unknown --projector {cfg.projector!r}", hint=" | ".join(rm.PROJECTORS))
    if cfg.llm_train not in rm.LLM_TRAIN:
        raise UsageError(f"unknown --llm-train {cfg.llm_train!r}", hint=" | ".join(rm.LLM_TRAIN))
    if epochs is not None:
        cfg.epochs = epochs
    if max_steps is not None:
        cfg.max_steps = max_steps

    dist = init_dist(device)
    dev = resolve_device(device) if dist.world == 1 else dist.device
    if dev.type == "cpu":
        amp = False
    torch.manual_seed(cfg.seed + dist.rank)

    # --- encoder (frozen), tokenizer, LM, projector ---
    ecard, wpath, ekey = resolve_key(cfg.model, cfg.weights)
    if "feature_map" not in (ecard.capabilities or []):
        raise UsageError(f"model {ecard.name} exposes no spatial feature map", hint="use e.g. ctvl-phantom")
    encoder = create_model(ecard, weights_path=wpath, device=dev).eval().requires_grad_(False)
    tok = rm.load_tokenizer(cfg.tokenizer or cfg.llm)
    ids = rm.special_ids(tok)
    llm, init, mode = _setup_llm(cfg, tok, ids)
    width = llm.get_input_embeddings().embedding_dim
    c, grid = rm.encoder_grid(encoder.cpu(), ecard.preprocess.shape)
    encoder.to(dev)
    pspec = rm.ProjectorSpec(cfg.projector, c, width, grid, cfg.queries, cfg.heads, cfg.pool_kernel)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        proj = rm.Projector(pspec)
    net = rm.ReportLM(proj, llm, ids)
    if state is not None:
        net.projector.load_state_dict(state["projector"])
        if state.get("llm") is not None:
            net.llm.load_state_dict(state["llm"], strict=False)
    net.to(dev).train()
    if mode == "frozen":
        net.llm.eval()

    # --- data ---
    pairs = read_pairs(cfg.pairs, image_root=cfg.image_root)
    per_step = cfg.batch_size * cfg.accum
    if len(pairs) // dist.world < per_step:
        raise UsageError(
            f"{len(pairs)} pairs cannot fill one step of {per_step} per process",
            hint="lower --batch-size/--accum",
        )
    if dist.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    fkey = _feature_key(ekey, pairs)
    fpath = out / f"features.rank{dist.rank}.npy" if dist.world > 1 else out / "features.npy"
    feats = _features(
        encoder,
        pairs,
        ecard.preprocess,
        fpath,
        fkey,
        workers=workers,
        dev=dev,
        emit=emit,
        input_cache=cfg.input_cache,
    )
    texts = [p.text for p in pairs]
    val = None
    if cfg.val_pairs and dist.rank == 0:
        vp = read_pairs(cfg.val_pairs, image_root=cfg.image_root)[: cfg.val_max]
        vf = _features(
            encoder,
            vp,
            ecard.preprocess,
            out / "val_features.npy",
            _feature_key(ekey, vp),
            workers=workers,
            dev=dev,
            emit=emit,
        )
        val = (vf, [p.text for p in vp])
    encoder.cpu()
    steps_per_epoch = (len(pairs) // dist.world) // per_step
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)

    trainable = net
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        trainable = DDP(
            net, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=False
        )
    params_proj = [p for p in net.projector.parameters() if p.requires_grad]
    params_llm = [p for p in net.llm.parameters() if p.requires_grad]
    groups = [{"params": params_proj, "lr_scale": 1.0}]
    if params_llm:
        groups.append({"params": params_llm, "lr_scale": (cfg.llm_lr or cfg.lr) / cfg.lr})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=cfg.weight_decay)
    amp_dtype = None
    if amp and dev.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    step, epoch, batch_in_epoch, best, history = 0, 0, 0, None, []
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        best, history = state.get("best"), state.get("history", [])
    resumed_from = step
    metric_name = None if val is None else "val_ce_f1"

    def trainable_llm_state():
        if mode == "frozen":
            return None
        return {n: p.detach().cpu() for n, p in net.llm.named_parameters() if p.requires_grad}

    def card() -> dict[str, Any]:
        return {
            "format": rm.FORMAT,
            "name": out.resolve().name,
            "description": f"Report generator trained by `ctvl finetune report` on {cfg.pairs}.",
            "encoder": {"model": cfg.model, "name": ecard.name, "key": ekey},
            "projector": pspec.to_dict(),
            "llm": {"source": cfg.llm, "init": init, "train": mode, "width": width},
            "prompt": "[visual prefix][BOS] report [EOS]",
            "max_len": cfg.max_len,
            "training": {
                "pairs": cfg.pairs,
                "step": step,
                "epoch": epoch,
                "best": best,
                "metric": metric_name,
            },
        }

    def save_ckpt() -> None:
        if dist.rank != 0:
            return
        atomic_torch_save(
            {
                "config": asdict(cfg),
                "projector": net.projector.state_dict(),
                "llm": trainable_llm_state(),
                "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "best": best,
                "history": history,
                # dropout draws from the global generator: resuming restores it, so a resumed run is exact
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if dev.type == "cuda" else None,
            },
            ckpt_path,
        )

    def export() -> None:
        if dist.rank == 0:
            rm.save_dir(out, net, tok, card(), llm_train=mode)

    emit(
        {
            "event": "start",
            "steps": total_steps,
            "step": step,
            "steps_per_epoch": steps_per_epoch,
            "effective_batch": per_step * dist.world,
            "world": dist.world,
            "device": str(dev),
            "pairs": len(pairs),
            "llm_train": mode,
            "trainable": sum(p.numel() for p in params_proj + params_llm),
        }
    )
    last_loss = float("nan")
    interrupted = False

    def fwd(f, x, m):
        ctx = torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with ctx:
            return trainable(f, x, m)

    if state is not None and state.get("rng") is not None:
        torch.set_rng_state(state["rng"])
        if dev.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    try:
        while epoch < cfg.epochs and step < total_steps:
            order = epoch_order(len(pairs), cfg.seed, epoch, dist, per_step)[batch_in_epoch * per_step :]
            t0 = time.perf_counter()
            for s in range(0, len(order), per_step):
                idx = order[s : s + per_step]
                lr = lr_at(step, total_steps, cfg.lr, cfg.warmup_steps)
                set_lr(opt, lr)
                opt.zero_grad(set_to_none=True)
                total = 0.0
                for j in range(cfg.accum):
                    mb = idx[j * cfg.batch_size : (j + 1) * cfg.batch_size]
                    x, m = rm.encode_reports(tok, [texts[i] for i in mb], ids, cfg.max_len)
                    sync = (
                        trainable.no_sync()
                        if dist.world > 1 and j < cfg.accum - 1
                        else contextlib.nullcontext()
                    )
                    with sync:
                        loss = fwd(feats[mb].to(dev).float(), x.to(dev), m.to(dev))
                        scaler.scale(loss / cfg.accum).backward()
                    total += float(loss.detach()) / cfg.accum
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(params_proj + params_llm, cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                last_loss = total
                step += 1
                batch_in_epoch += 1
                emit(
                    {
                        "event": "step",
                        "step": step,
                        "epoch": epoch,
                        "loss": last_loss,
                        "lr": lr,
                        "secs": time.perf_counter() - t0,
                    }
                )
                t0 = time.perf_counter()
                if cfg.save_every and step % cfg.save_every == 0:
                    save_ckpt()
                if step >= total_steps:
                    break
                if stop_after and step >= stop_after:
                    raise KeyboardInterrupt
            rec: dict[str, Any] = {"epoch": epoch, "step": step, "loss": last_loss}
            if batch_in_epoch >= steps_per_epoch:
                epoch += 1
                batch_in_epoch = 0
            if dist.rank == 0:
                improved = True
                if val is not None:
                    rec.update(_validate(net, tok, ids, val, cfg, dev, mode))
                    m_ = rec["val_ce_f1"]
                    improved = best is None or (m_ == m_ and m_ > best)
                    if improved:
                        best = m_
                history.append(rec)
                with (out / "metrics.jsonl").open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                if improved:
                    export()
                save_ckpt()
                emit({"event": "epoch", **rec})
            if dist.world > 1:
                torch.distributed.barrier()
    except KeyboardInterrupt:
        interrupted = True
        save_ckpt()
        if dist.rank == 0 and not (out / rm.CARD).exists():
            export()
    finally:
        dist.close()
    if not interrupted and dist.rank == 0 and not (out / rm.CARD).exists():
        export()
    return ReportResult(
        out=str(out),
        epochs_done=epoch,
        steps=step,
        last_loss=last_loss,
        best_metric=best,
        metric_name=metric_name,
        llm_train=mode,
        history=history,
        resumed_from_step=resumed_from,
        interrupted=interrupted,
    )


def _validate(net, tok, ids, val, cfg: ReportConfig, dev, mode: str) -> dict[str, float]:
    """Teacher-forced loss and clinical-efficacy macro F1 of greedy reports on the validation pairs."""
    import torch

    from ctvl_cli.reports import model as rm
    from ctvl_cli.reports.labeler import label_reports
    from ctvl_cli.reports.metrics import prf_table

    feats, texts = val
    net.eval()
    losses, gen = [], []
    with torch.no_grad():
        for s in range(0, len(texts), 16):
            f = feats[s : s + 16].to(dev).float()
            x, m = rm.encode_reports(tok, texts[s : s + 16], ids, cfg.max_len)
            losses.append(float(net(f, x.to(dev), m.to(dev))) * len(x))
            gen += rm.decode(tok, net.generate(f, max_new_tokens=cfg.max_len), ids)
    net.train()
    if mode == "frozen":
        net.llm.eval()
    _, macro = prf_table(label_reports(texts), label_reports(gen))
    return {"val_loss": sum(losses) / len(texts), "val_ce_f1": macro["f1"]}

"""``finetune clip``: contrastive image–report training of a registry architecture.

* AdamW, linear warm-up then cosine decay (per optimizer step); AMP (bf16, else fp16 + GradScaler) on CUDA only.
* Gradient accumulation the open_clip way: features of all micro-batches are cached, then each micro-batch is
  recomputed with gradients against the whole accumulated batch, so negatives span the full effective batch.
* Data parallel under ``torchrun`` (NCCL on GPU, gloo on CPU); features are all-gathered with gradients
  (open_clip's ``gather_with_grad`` + ``local_loss``).
* Run directory: ``checkpoint.pt`` (everything needed to resume, written atomically every ``save_every`` steps,
  at each epoch end and on Ctrl-C), ``model.safetensors`` (best by the validation metric, else last),
  ``ctvl_card.json`` (so ``--model RUN_DIR`` works in every command), ``metrics.jsonl``, ``tokenizer/``.
* Resume restores model, optimizer, scaler, schedule position and the exact place in the epoch's data order.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ctvl_cli.errors import InputError, UsageError
from ctvl_cli.train.clip_step import freeze, pair_module, param_groups, train_step
from ctvl_cli.train.common import atomic_torch_save, epoch_order, init_dist, lr_at, set_lr, write_run_card

CKPT = "checkpoint.pt"


@dataclass
class ClipConfig:
    pairs: str
    model: str
    weights: str | None = None
    scratch: bool = False
    tokenizer: str | None = None
    arch_params: dict[str, Any] = field(default_factory=dict)  # --arch-param overrides of the card's params
    epochs: int = 10
    batch_size: int = 16
    accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 50
    grad_clip: float = 1.0
    val_pairs: str | None = None
    val_labels: str | None = None
    text_aug: bool = True
    text_aug_whole: float = 0.5  # probability that an augmented text is the whole report
    seed: int = 0
    save_every: int = 100
    max_steps: int | None = None
    image_root: str | None = None
    input_cache: str | None = None
    # labels.csv of the training scans: auxiliary multi-label loss on pooled image features (training only)
    labels: str | None = None
    label_weight: float = 1.0
    label_input: str = "pooled"  # what the label head reads: "pooled" trunk features or the "embedding"
    # with labels: BCE on the zero-shot logits of the card's prompts (ctvl_cli.train.prompts)
    prompt_weight: float = 0.0
    # spatial augmentation of the training inputs (ctvl_cli.train.augment); all 0: off
    aug_shift_mm: float = 0.0
    aug_rotate_deg: float = 0.0
    aug_scale: float = 0.0
    # with labels: folder of label maps (value k = k-th label column) -> dense per-cell loss (train.masks)
    masks: str | None = None
    mask_weight: float = 1.0
    mask_stage: int = -1  # the image stage whose feature map gets the loss (-1: the last)
    mask_pos_weight: float = 1.0  # weight of the positive cells in that loss
    mask_labels: list[str] | None = None  # the label columns that get that loss (None: all)
    clip_weight: float = 1.0  # weight of the contrastive loss (0: only the auxiliary losses train)
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes kept fixed (and in eval mode)
    lr_mult: dict[str, float] = field(default_factory=dict)  # parameter-name prefix -> learning-rate factor


@dataclass
class ClipResult:
    out: str
    epochs_done: int
    steps: int
    last_loss: float
    best_metric: float | None
    metric_name: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_step: int = 0
    interrupted: bool = False
    last_label_loss: float | None = None  # the auxiliary --labels loss at the last step (None when off)
    last_prompt_loss: float | None = None  # the --prompt-weight loss at the last step (None when off)
    last_mask_loss: float | None = None  # the --masks loss at the last step (None when off)


def _label_matrix(labels_csv: str, pairs) -> tuple[list[str], Any]:
    """Rows of labels.csv aligned with the training pairs (every pair must have one)."""
    import torch

    from ctvl_cli.zeroshot.truth import read_label_table, scan_key

    names, table = read_label_table(labels_csv)
    missing = [p.id for p in pairs if scan_key(p.id) not in table]
    if missing:
        raise InputError(
            f"{len(missing)} training scans have no labels, first {missing[0]}",
            path=labels_csv,
            hint="--labels must list every scan of --pairs",
        )
    rows = [[float("nan") if v is None else float(v) for v in table[scan_key(p.id)]] for p in pairs]
    return names, torch.tensor(rows)


def finetune_clip(
    cfg: ClipConfig | None,
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
) -> ClipResult:
    import torch

    from ctvl_cli.models.factory import create_model, resolve_device, tokenizer_fn
    from ctvl_cli.registry import resolve_card
    from ctvl_cli.registry.weights import resolve_card_and_weights
    from ctvl_cli.train.augment import SpatialAug
    from ctvl_cli.train.data import PairDataset, collate, read_pairs

    out = Path(out)
    emit = on_event or (lambda e: None)
    ckpt_path = out / CKPT
    state = None
    if ckpt_path.exists():
        if resume:
            state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            cfg = ClipConfig(**state["config"])
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
        raise UsageError("--pairs and --model are required for a new run")
    if epochs is not None:
        cfg.epochs = epochs
    if max_steps is not None:
        cfg.max_steps = max_steps

    dist = init_dist(device)
    dev = resolve_device(device) if dist.world == 1 else dist.device
    if dev.type == "cpu":
        amp = False  # bf16 autocast of 3D convs on CPU is ~300x slower than fp32
    torch.manual_seed(cfg.seed + dist.rank)

    # --- model, card, tokenizer ---
    if cfg.scratch:
        card, wpath = resolve_card(cfg.model), None
    else:
        card, wpath, _ = resolve_card_and_weights(cfg.model, weights=cfg.weights)
    if card.tokenizer is None:
        raise UsageError(
            f"model {card.name} has no text encoder", hint="finetune clip needs an image-text model"
        )
    params = dict(card.params)
    tok_dir = _tokenizer_source(card, cfg.tokenizer)
    from ctvl_cli.tokenizers import load_hf_tokenizer

    hf_tok = load_hf_tokenizer(str(tok_dir), lower_case=card.tokenizer.lower_case)
    if cfg.tokenizer:
        if not cfg.scratch:
            raise UsageError("--tokenizer changes the vocabulary: only valid with --scratch")
        params["vocab_size"] = len(hf_tok)
        if "pad_id" in params:
            params["pad_id"] = int(hf_tok.pad_token_id or 0)
    params.update(cfg.arch_params)
    card_dict = card.to_dict()
    card_dict["architecture"] = {"arch": card.arch, "params": params}
    from ctvl_cli.registry.schema import parse_card

    run_card = parse_card({**card_dict, "weights": [{"kind": "init", "seed": cfg.seed}]}, where="run")
    try:
        model = create_model(
            run_card, weights_path=wpath, device="cpu", allow_new=bool(cfg.arch_params)
        ).train()
    except (TypeError, ValueError, RuntimeError) as e:  # a bad --arch-param
        if not cfg.arch_params:
            raise
        why = "the weights do not fit these parameters" if isinstance(e, RuntimeError) else str(e)
        raise UsageError(
            f"--arch-param {cfg.arch_params}: {why}",
            hint="from weights only optional add-ons (small-clip: skip_stage, skip_dim) may change; else --scratch",
        ) from None
    if state is not None:
        model.load_state_dict(state["model"])
    model.to(dev)
    try:
        frozen = freeze(model, cfg.freeze)
    except ValueError as e:
        raise UsageError(f"--freeze: {e}", hint="prefixes of the model's parameter names") from None
    card_tokenize = tokenizer_fn(hf_tok, card.tokenizer)

    def tokenize(texts):
        enc = card_tokenize(list(texts))
        return enc["input_ids"].to(dev), enc["attention_mask"].to(dev)

    # --- data ---
    pairs = read_pairs(cfg.pairs, image_root=cfg.image_root)
    per_step = cfg.batch_size * cfg.accum
    if len(pairs) // dist.world < per_step:
        raise UsageError(
            f"{len(pairs)} pairs cannot fill one step of {per_step} per process",
            hint="lower --batch-size/--accum or add data",
        )
    store = None
    if cfg.input_cache:
        from ctvl_cli.train.inputs import InputStore

        store = InputStore(cfg.input_cache, [p.image for p in pairs], card.preprocess)
        if dist.rank == 0 and store.missing():
            emit({"event": "prepare", "todo": len(store.missing()), "store": str(store.data_path)})
            store.fill(
                workers=workers, on_progress=lambda n, t: emit({"event": "prepare_step", "n": n, "of": t})
            )
        if dist.world > 1:
            torch.distributed.barrier()
    ds = PairDataset(
        pairs,
        card.preprocess,
        text_aug=cfg.text_aug,
        text_whole=cfg.text_aug_whole,
        seed=cfg.seed,
        store=store,
        aug=SpatialAug(cfg.aug_shift_mm, cfg.aug_rotate_deg, cfg.aug_scale),
    )
    steps_per_epoch = (len(pairs) // dist.world) // per_step  # = len(epoch_order(...)) // per_step
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)

    label_names, label_rows, prompts = None, None, None
    if cfg.labels:
        label_names, label_rows = _label_matrix(cfg.labels, pairs)
    if cfg.prompt_weight:
        if label_names is None:
            raise UsageError("--prompt-weight needs --labels", hint="labels.csv of the training scans")
        from ctvl_cli.train.prompts import PromptBank

        prompts = PromptBank(label_names, card.prompt_templates, tokenize)
    dense_ch = 0
    if cfg.mask_labels and not cfg.masks:
        raise UsageError("--mask-labels needs --masks", hint="the label maps whose loss it restricts")
    if cfg.masks:
        from ctvl_cli.train.masks import label_index, run_targets

        if label_names is None:
            raise UsageError("--masks needs --labels", hint="mask value k marks the k-th column of --labels")
        keep = label_index(label_names, cfg.mask_labels) if cfg.mask_labels else None
        ds.targets, dense_ch = run_targets(
            cfg.masks,
            model,
            card.preprocess,
            pairs,
            len(label_names),
            out=out,
            dist=dist,
            workers=workers,
            emit=emit,
            stage=cfg.mask_stage,
        )
        if keep is not None:  # only these columns get the loss
            ds.targets = ds.targets[:, keep].contiguous()
    net = pair_module(
        model,
        len(label_names) if label_names and cfg.label_weight else 0,
        prompts,
        dense_labels=int(ds.targets.shape[1]) if dense_ch and cfg.mask_weight else 0,
        dense_channels=dense_ch,
        dense_stage=cfg.mask_stage,
        label_input=cfg.label_input,
    )
    net_head, net_dense = net.head, net.dense
    for mod, key in ((net_head, "aux_head"), (net_dense, "mask_head")):
        if mod is not None:
            mod.to(dev)
            if state is not None and state.get(key):
                mod.load_state_dict(state[key])
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    try:
        groups = param_groups(net, cfg.weight_decay, cfg.lr_mult)
    except ValueError as e:
        raise UsageError(f"--lr-mult: {e}", hint="prefixes of the model's parameter names") from None
    opt = torch.optim.AdamW(
        groups,
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
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

    val = None
    if cfg.val_pairs and dist.rank == 0:
        from ctvl_cli.train.validate import Validator

        val = Validator(
            cfg.val_pairs, cfg.val_labels, card.preprocess, workers=workers, image_root=cfg.image_root
        )

    if dist.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        _copy_tokenizer(tok_dir, out / "tokenizer", card, cfg.tokenizer)
    metric_name = None if val is None else val.metric_name

    def save_ckpt() -> None:
        if dist.rank != 0:
            return
        atomic_torch_save(
            {
                "config": asdict(cfg),
                "model": model.state_dict(),
                "aux_head": None if net_head is None else net_head.state_dict(),
                "mask_head": None if net_dense is None else net_dense.state_dict(),
                "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "best": best,
                "history": history,
                "card": card_dict,
            },
            ckpt_path,
        )

    def export(tag: str) -> None:
        if dist.rank == 0:
            write_run_card(out, model, card_dict, params, source=card.name, pairs=cfg.pairs, note=tag)

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
            "frozen": len(frozen),
        }
    )
    last_loss, aux_losses = float("nan"), {}
    interrupted = False
    try:
        while epoch < cfg.epochs and step < total_steps:
            ds.epoch = epoch
            freeze(
                model, cfg.freeze
            )  # again: setup (the mask targets' dry run) and validation reset train mode
            order = epoch_order(len(pairs), cfg.seed, epoch, dist, per_step)[batch_in_epoch * per_step :]
            loader = torch.utils.data.DataLoader(
                ds,
                batch_size=cfg.batch_size,
                sampler=order,
                num_workers=workers,
                collate_fn=collate,
                persistent_workers=False,
                prefetch_factor=4 if workers else None,
            )
            micro: list = []
            t0 = time.perf_counter()
            for xs, texts, idx, ts in loader:
                y = None if label_rows is None else label_rows[idx].to(dev)
                t = None if ts is None else ts.to(dev)
                micro.append((xs.to(dev, non_blocking=True), *tokenize(texts), y, t))
                if len(micro) < cfg.accum:
                    continue
                lr = lr_at(step, total_steps, cfg.lr, cfg.warmup_steps)
                set_lr(opt, lr)
                last_loss, aux_losses = train_step(
                    net,
                    micro,
                    opt,
                    scaler,
                    amp_dtype,
                    dev,
                    dist,
                    cfg.grad_clip,
                    cfg.label_weight,
                    cfg.prompt_weight,
                    cfg.mask_weight if net_dense is not None else 0.0,
                    cfg.mask_pos_weight,
                    cfg.clip_weight,
                )
                micro = []
                step += 1
                batch_in_epoch += 1
                emit(
                    {
                        "event": "step",
                        "step": step,
                        "epoch": epoch,
                        "loss": last_loss,
                        **aux_losses,
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
                    raise KeyboardInterrupt  # leave the run exactly as an interruption would
            rec: dict[str, Any] = {"epoch": epoch, "step": step, "loss": last_loss, **aux_losses}
            epoch_done = batch_in_epoch >= steps_per_epoch
            if epoch_done:
                epoch += 1
                batch_in_epoch = 0
            if dist.rank == 0:
                improved = True
                if val is not None:
                    model.eval()
                    rec.update(val.run(model, tokenize, dev))
                    model.train()  # (frozen parts go back to eval mode at the next epoch's start)
                    m = rec[val.metric_name]
                    improved = best is None or (m == m and m > best)
                    if improved:
                        best = m
                history.append(rec)
                with (out / "metrics.jsonl").open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                if improved:
                    export(f"epoch {rec['epoch']}")
                save_ckpt()
                emit({"event": "epoch", **rec})
            if dist.world > 1:
                torch.distributed.barrier()
    except KeyboardInterrupt:
        interrupted = True
        save_ckpt()
        if dist.rank == 0 and not (out / "model.safetensors").exists():
            export("interrupted")
    finally:
        dist.close()
    if not interrupted and dist.rank == 0 and not (out / "model.safetensors").exists():
        export("last")
    return ClipResult(
        out=str(out),
        epochs_done=epoch,
        steps=step,
        last_loss=last_loss,
        best_metric=best,
        metric_name=metric_name,
        history=history,
        resumed_from_step=resumed_from,
        interrupted=interrupted,
        last_label_loss=aux_losses.get("label_loss"),
        last_prompt_loss=aux_losses.get("prompt_loss"),
        last_mask_loss=aux_losses.get("mask_loss"),
    )


def _tokenizer_source(card, override: str | None) -> Path:
    from ctvl_cli.tokenizers import tokenizer_source

    if override:
        p = Path(override)
        if not (p / "tokenizer_config.json").is_file():
            raise UsageError(
                "not a tokenizer directory", path=p, hint="make one with `ctvl finetune tokenizer`"
            )
        return p
    return Path(tokenizer_source(card))


def _copy_tokenizer(src: Path, dst: Path, card, override: str | None) -> None:
    """Run directories carry their tokenizer unless it is one shipped with ctvl."""
    if card.tokenizer.kind == "packaged" and not override:
        return
    if src.is_dir() and src.resolve() != dst.resolve():
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst)

"""`ctvl finetune clip | probe | tokenizer`: contrastive training, linear probes, report tokenizers."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.common import DeviceOpt, FormatOpt, ModelOpt, handle_errors
from ctvl_cli.cli.output import Format
from ctvl_cli.errors import EXIT_INTERRUPTED

app = typer.Typer(
    help="Contrastive image-report training, report generators, linear probes on cached embeddings, report "
    "tokenizers.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

CLIP_EXAMPLES = """\b
Examples:
  ctvl finetune clip --pairs train/pairs.csv --model ctvl-phantom --out runs/ft1 --epochs 5
  ctvl finetune clip --pairs train/pairs.csv --val-pairs val/pairs.csv --val-labels val/labels.csv \\
      --model ctvl-phantom --scratch --tokenizer tok/ --out runs/new --batch-size 16 --accum 4
  ctvl finetune clip --out runs/ft1 --resume                 # continue after a kill or Ctrl-C
  torchrun --nproc-per-node 2 $(which ctvl) finetune clip --pairs p.csv --model M --out runs/ddp
  ctvl embed scans/ --model runs/ft1 --cache emb.h5          # a run directory is a model
"""


def _event_printer(fmt_every: int = 10):
    """Progress on stderr: a rich bar on a terminal, else a log line every ``fmt_every`` steps."""
    state: dict = {"bar": None, "ctx": None, "t0": time.perf_counter()}
    tty = sys.stderr.isatty()

    def on_event(e: dict) -> None:
        ev = e["event"]
        if ev == "start":
            output.info(
                f"training {e['steps']} steps ({e['steps_per_epoch']}/epoch) on {e['pairs']} pairs, "
                f"effective batch {e['effective_batch']}, {e['world']} process(es), device {e['device']}"
                + (
                    f", LM {e['llm_train']}, {e['trainable']:,} trainable parameters"
                    if "llm_train" in e
                    else ""
                )
                + (f", resuming at step {e['step']}" if e["step"] else "")
            )
            if tty:
                state["ctx"] = output.progress(e["steps"], "finetune clip")
                state["bar"] = state["ctx"].__enter__()
                state["bar"].advance(e["step"])
        elif ev == "features":
            output.info(f"computing frozen encoder feature maps of {e['n']} scan(s) once")
        elif ev == "prepare":
            output.info(f"preprocessing {e['todo']} volume(s) once into {e['store']}")
        elif ev == "prepare_masks":
            output.info(f"computing the feature-grid targets of {e['todo']} mask(s) once into {e['store']}")
        elif ev == "prepare_step":
            if e["n"] % 250 == 0 or e["n"] == e["of"]:
                output.info(f"preprocessed {e['n']}/{e['of']}")
        elif ev == "step":
            if state["bar"] is not None:
                state["bar"].advance(1)
            elif e["step"] % fmt_every == 0:
                aux = f" label_loss {e['label_loss']:.4f}" if "label_loss" in e else ""
                aux += f" prompt_loss {e['prompt_loss']:.4f}" if "prompt_loss" in e else ""
                aux += f" mask_loss {e['mask_loss']:.4f}" if "mask_loss" in e else ""
                output.info(
                    f"step {e['step']} epoch {e['epoch']} loss {e['loss']:.4f}{aux} lr {e['lr']:.2e} ({e['secs']:.2f} s/step)"
                )
        elif ev == "epoch":
            vals = " ".join(
                f"{k} {v:.4f}" for k, v in e.items() if isinstance(v, float) and k not in ("loss",)
            )
            output.info(f"epoch {e['epoch']} done: step {e['step']} loss {e['loss']:.4f} {vals}".rstrip())

    def close() -> None:
        if state["ctx"] is not None:
            state["ctx"].__exit__(None, None, None)

    return on_event, close


def _names(text: str | None) -> list[str]:
    """A comma-separated option value -> its non-empty, stripped items."""
    return [n.strip() for n in (text or "").split(",") if n.strip()]


@app.command("clip", epilog=CLIP_EXAMPLES)
@handle_errors
def clip_cmd(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run directory (checkpoint, model, card, metrics).")
    ],
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="CSV of image,text pairs (paths relative to the CSV).")
    ] = None,
    model: ModelOpt = None,
    weights: Annotated[str | None, typer.Option("--weights", help="Start from this weights file.")] = None,
    scratch: Annotated[
        bool, typer.Option("--scratch", help="Random init of the model's architecture.")
    ] = False,
    tokenizer: Annotated[
        Path | None,
        typer.Option("--tokenizer", help="Tokenizer directory (from `finetune tokenizer`); --scratch only."),
    ] = None,
    arch_param: Annotated[
        list[str] | None,
        typer.Option(
            "--arch-param",
            help="KEY=VALUE (JSON value) overriding an architecture parameter of the card, repeatable; "
            "from weights, only optional add-ons (e.g. small-clip's skip_stage=1) may be new.",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Epochs (default 10).")] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=2, help="Pairs per micro-batch per process.")
    ] = 16,
    accum: Annotated[
        int,
        typer.Option("--accum", min=1, help="Micro-batches per optimizer step (negatives span all of them)."),
    ] = 1,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW).")] = 3e-4,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.05,
    grad_clip: Annotated[
        float, typer.Option("--grad-clip", min=0.0, help="Max gradient norm (0: off).")
    ] = 1.0,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Linear warm-up steps before cosine decay.")
    ] = 50,
    val_pairs: Annotated[
        Path | None, typer.Option("--val-pairs", help="Held-out pairs: Recall@K each epoch.")
    ] = None,
    val_labels: Annotated[
        Path | None,
        typer.Option("--val-labels", help="labels.csv for the held-out scans: zero-shot AUROC each epoch."),
    ] = None,
    text_aug: Annotated[
        bool,
        typer.Option("--text-aug/--no-text-aug", help="Random sentence subsets of reports as augmentation."),
    ] = True,
    text_aug_whole: Annotated[
        float,
        typer.Option(
            "--text-aug-whole",
            min=0.0,
            max=1.0,
            help="With --text-aug: probability of keeping the whole report (else a random sentence subset).",
        ),
    ] = 0.5,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="labels.csv of the training scans: adds a multi-label loss on the pooled image features (training only).",
        ),
    ] = None,
    label_weight: Annotated[
        float, typer.Option("--label-weight", min=0.0, help="Weight of the --labels loss.")
    ] = 1.0,
    label_input: Annotated[
        str,
        typer.Option(
            "--label-input",
            help="What the --labels head reads: 'pooled' trunk features (trains the tower) or the 'embedding' "
            "(trains the projections: findings become linear in the embedding).",
        ),
    ] = "pooled",
    prompt_weight: Annotated[
        float,
        typer.Option(
            "--prompt-weight",
            min=0.0,
            help="With --labels: weight of a loss on the zero-shot logits of the card's prompts "
            "('X is present.' vs 'X is not present.'), VocabFine-style (0: off).",
        ),
    ] = 0.0,
    masks: Annotated[
        Path | None,
        typer.Option(
            "--masks",
            help="With --labels: folder of label maps named like the scans (value k = k-th label column, e.g. "
            "`ctvl phantom --masks`): adds a per-cell loss on the image feature map (training only).",
        ),
    ] = None,
    mask_weight: Annotated[
        float, typer.Option("--mask-weight", min=0.0, help="Weight of the --masks loss.")
    ] = 1.0,
    mask_stage: Annotated[
        int,
        typer.Option(
            "--mask-stage",
            min=-1,
            help="The image-tower stage whose feature map gets the --masks loss (0: the finest; -1: the last). "
            "A finer stage localises small findings (nodules, calcified plaques) to smaller cells.",
        ),
    ] = -1,
    mask_pos_weight: Annotated[
        float,
        typer.Option(
            "--mask-pos-weight",
            min=0.0,
            help="Weight of the positive cells in the --masks loss (small findings fill few cells).",
        ),
    ] = 1.0,
    mask_labels: Annotated[
        str | None,
        typer.Option(
            "--mask-labels",
            help="Comma-separated --labels columns that get the --masks loss (default: all). Large findings "
            "fill hundreds of cells and otherwise dominate it.",
        ),
    ] = None,
    clip_weight: Annotated[
        float,
        typer.Option(
            "--clip-weight",
            min=0.0,
            help="Weight of the contrastive loss (0: only the --labels/--masks losses train; it is still reported).",
        ),
    ] = 1.0,
    freeze: Annotated[
        str | None,
        typer.Option(
            "--freeze",
            help="Comma-separated parameter-name prefixes to keep fixed (no gradient, BatchNorm in eval mode), "
            "e.g. 'visual.0,visual.1,skip'.",
        ),
    ] = None,
    lr_mult: Annotated[
        str | None,
        typer.Option(
            "--lr-mult",
            help="Comma-separated PREFIX=FACTOR: parameters whose names start with PREFIX train at FACTOR x the "
            "learning rate, e.g. 'text=0.05,tok=0.05'.",
        ),
    ] = None,
    aug_shift: Annotated[
        float,
        typer.Option(
            "--aug-shift",
            min=0.0,
            help="Random translation of training volumes, up to this many mm per axis.",
        ),
    ] = 0.0,
    aug_rotate: Annotated[
        float,
        typer.Option(
            "--aug-rotate",
            min=0.0,
            max=45.0,
            help="Random rotation about each axis, up to this many degrees.",
        ),
    ] = 0.0,
    aug_scale: Annotated[
        float,
        typer.Option(
            "--aug-scale", min=0.0, max=0.5, help="Random isotropic scaling by a factor in [1-s, 1+s]."
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    save_every: Annotated[
        int, typer.Option("--save-every", min=0, help="Checkpoint every N steps (0: per epoch).")
    ] = 100,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Stop after N optimizer steps.")
    ] = None,
    image_root: Annotated[
        Path | None, typer.Option("--image-root", help="Base folder for relative image paths.")
    ] = None,
    input_cache: Annotated[
        Path | None,
        typer.Option(
            "--input-cache",
            help="Folder for preprocessed volumes (float16 memmap, filled once, reused by later epochs/runs).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Data-loading processes.")] = 1,
    device: DeviceOpt = "auto",
    amp: Annotated[
        bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA (never on CPU).")
    ] = True,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Start over in a run directory that has a checkpoint.")
    ] = False,
    stop_after: Annotated[int | None, typer.Option("--stop-after", hidden=True)] = None,
    fmt: FormatOpt = Format.human,
) -> None:
    """Contrastive image-report training (CLIP loss) of a registry model; the run directory becomes a model."""
    from ctvl_cli.api.embed import DEFAULT_MODEL
    from ctvl_cli.errors import UsageError
    from ctvl_cli.train.clip import ClipConfig, finetune_clip
    from ctvl_cli.train.common import parse_arch_params, parse_lr_mult

    cfg = None
    if not resume:
        if pairs is None:
            raise UsageError("--pairs is required", hint="a CSV with columns image,text")
        if label_input not in ("pooled", "embedding"):
            raise UsageError(f"--label-input {label_input!r}", hint="pooled or embedding")
        cfg = ClipConfig(
            pairs=str(pairs),
            model=model or DEFAULT_MODEL,
            weights=weights,
            scratch=scratch,
            tokenizer=str(tokenizer) if tokenizer else None,
            arch_params=parse_arch_params(arch_param or []),
            epochs=epochs or 10,
            batch_size=batch_size,
            accum=accum,
            lr=lr,
            grad_clip=grad_clip,
            weight_decay=weight_decay,
            warmup_steps=warmup,
            val_pairs=str(val_pairs) if val_pairs else None,
            val_labels=str(val_labels) if val_labels else None,
            text_aug=text_aug,
            text_aug_whole=text_aug_whole,
            labels=str(labels) if labels else None,
            label_weight=label_weight,
            label_input=label_input,
            prompt_weight=prompt_weight,
            masks=str(masks) if masks else None,
            mask_weight=mask_weight,
            mask_stage=mask_stage,
            mask_pos_weight=mask_pos_weight,
            mask_labels=_names(mask_labels) or None,
            clip_weight=clip_weight,
            freeze=_names(freeze),
            lr_mult=parse_lr_mult(lr_mult),
            aug_shift_mm=aug_shift,
            aug_rotate_deg=aug_rotate,
            aug_scale=aug_scale,
            seed=seed,
            save_every=save_every,
            max_steps=max_steps,
            image_root=str(image_root) if image_root else None,
            input_cache=str(input_cache) if input_cache else None,
        )
    on_event, close = _event_printer()
    try:
        res = finetune_clip(
            cfg,
            out=out,
            resume=resume,
            overwrite=overwrite,
            epochs=epochs if resume else None,
            max_steps=max_steps if resume else None,
            workers=workers,
            device=device,
            amp=amp,
            on_event=on_event,
            stop_after=stop_after,
        )
    finally:
        close()
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return
    rec = {
        "out": res.out,
        "epochs_done": res.epochs_done,
        "steps": res.steps,
        "last_loss": round(res.last_loss, 5),
        "last_label_loss": None if res.last_label_loss is None else round(res.last_label_loss, 5),
        "last_prompt_loss": None if res.last_prompt_loss is None else round(res.last_prompt_loss, 5),
        "last_mask_loss": None if res.last_mask_loss is None else round(res.last_mask_loss, 5),
        "metric": res.metric_name,
        "best_metric": res.best_metric,
        "resumed_from_step": res.resumed_from_step,
        "interrupted": res.interrupted,
    }
    output.write_record(rec, fmt)
    if res.interrupted:
        output.error(
            f"interrupted at step {res.steps}; checkpoint saved (hint: ctvl finetune clip --out {out} --resume)"
        )
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command("tokenizer")
@handle_errors
def tokenizer_cmd(
    texts: Annotated[
        Path, typer.Option("--texts", help="Report CSV (text or Findings_EN/Impressions_EN columns).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Tokenizer directory to write.")],
    vocab_size: Annotated[
        int, typer.Option("--vocab-size", min=100, help="WordPiece vocabulary size.")
    ] = 2048,
    max_length: Annotated[
        int, typer.Option("--max-length", min=8, help="Model max length recorded in the config.")
    ] = 256,
    cased: Annotated[bool, typer.Option("--cased", help="Keep case (default: lower-case).")] = False,
    fmt: FormatOpt = Format.human,
) -> None:
    """Train a WordPiece tokenizer on report text (loadable with transformers' AutoTokenizer)."""
    from ctvl_cli.api.reports import read_reports
    from ctvl_cli.errors import InputError
    from ctvl_cli.train.tokenizer import train_tokenizer

    rows = [r.text for r in read_reports(texts) if r.text]
    if not rows:
        raise InputError("no report text", path=texts)
    info = train_tokenizer(rows, out, vocab_size=vocab_size, lower_case=not cased, max_length=max_length)
    output.write_record({**info, "texts": len(rows)}, fmt)


@app.command("probe")
@handle_errors
def probe_cmd(
    labels: Annotated[
        Path, typer.Option("--labels", help="labels.csv: scan name column, then 0/1 finding columns.")
    ],
    cache: Annotated[
        Path, typer.Option("--cache", "-c", help="HDF5 cache holding the scans' image embeddings.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Head file to write (.safetensors).")] = Path(
        "probe.safetensors"
    ),
    model: ModelOpt = None,
    weights: Annotated[
        str | None, typer.Option("--weights", help="Explicit weights file for the model.")
    ] = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Held-out share for validation AUROC.")
    ] = 0.2,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Full-batch AdamW steps.")] = 500,
    lr: Annotated[float, typer.Option("--lr")] = 0.05,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 1e-4,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    fmt: FormatOpt = Format.human,
) -> None:
    """Multi-label linear probe on cached image embeddings; `ctvl zeroshot --head OUT` applies it."""
    from ctvl_cli.train.probe import train_probe

    res = train_probe(
        cache=cache,
        labels=labels,
        out=out,
        model=model,
        weights=weights,
        val_fraction=val_fraction,
        steps=steps,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
    )
    rows = [{"finding": f, "val_auroc": res.val_auroc.get(f)} for f in res.findings]
    output.write_table(rows, fmt, columns=["finding", "val_auroc"])
    output.info(
        f"head -> {res.out}: {res.n_train} train / {res.n_val} val scans, mean val AUROC {res.mean_val_auroc:.4f}"
        + (f"; {res.unlabelled_scans} cached scans had no label" if res.unlabelled_scans else "")
        + (f"; {res.unmatched_labels} labelled scans were not in the cache" if res.unmatched_labels else "")
    )


def register(root: typer.Typer) -> None:
    from ctvl_cli.cli.commands import finetune_report  # noqa: F401  (adds `finetune report` to this app)

    root.add_typer(
        app,
        name="finetune",
        help="Contrastive fine-tuning, report generators, linear probes and report tokenizers.",
    )

"""`ctvl finetune report`: train a report generator (frozen image encoder -> projector -> causal LM)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctvl_cli.cli import output
from ctvl_cli.cli.commands.finetune import _event_printer, app
from ctvl_cli.cli.common import DeviceOpt, FormatOpt, ModelOpt, handle_errors
from ctvl_cli.cli.output import Format
from ctvl_cli.errors import EXIT_INTERRUPTED

REPORT_EXAMPLES = """\b
Examples:
  ctvl finetune report --pairs train/pairs.csv --llm path/to/causal-lm --out runs/rep1 --epochs 5
  ctvl finetune report --pairs train/pairs.csv --llm gpt2 --llm-train lora --out runs/rep2   # gpt2 in the HF cache
  ctvl finetune report --pairs p.csv --llm lm-config-dir/ --llm-train full --projector pool --out runs/rep3
  ctvl finetune report --out runs/rep1 --resume                 # continue after a kill or Ctrl-C
  ctvl generate-report scans/ --model runs/rep1                 # a run directory is a report model
"""


@app.command("report", epilog=REPORT_EXAMPLES)
@handle_errors
def report_cmd(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run directory (checkpoint, report model, metrics).")
    ],
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="CSV of image,text pairs (paths relative to the CSV).")
    ] = None,
    llm: Annotated[
        str | None,
        typer.Option(
            "--llm",
            help="Causal LM: a local directory (config.json + weights; config.json alone = train from scratch) "
            "or a hub name already in the Hugging Face cache.",
        ),
    ] = None,
    tokenizer: Annotated[
        Path | None, typer.Option("--tokenizer", help="Tokenizer directory (default: the --llm's own).")
    ] = None,
    model: ModelOpt = None,
    weights: Annotated[str | None, typer.Option("--weights", help="Image encoder weights file.")] = None,
    projector: Annotated[
        str,
        typer.Option("--projector", help="attn (learned queries, CT-CHAT) | pool (spatial pooling, M3D)."),
    ] = "attn",
    queries: Annotated[
        int, typer.Option("--queries", min=1, help="attn: learned queries (visual tokens).")
    ] = 32,
    heads: Annotated[int, typer.Option("--projector-heads", min=1, help="attn: attention heads.")] = 4,
    pool_kernel: Annotated[int, typer.Option("--pool-kernel", min=1, help="pool: 3-D pooling kernel.")] = 2,
    llm_train: Annotated[
        str,
        typer.Option(
            "--llm-train",
            help="auto (full for a config-only --llm, else frozen) | frozen | lora (peft) | full.",
        ),
    ] = "auto",
    lora_r: Annotated[int, typer.Option("--lora-r", min=1, help="LoRA rank.")] = 8,
    lora_alpha: Annotated[int, typer.Option("--lora-alpha", min=1, help="LoRA alpha.")] = 16,
    lora_targets: Annotated[
        str | None,
        typer.Option(
            "--lora-targets", help="Comma-separated module names (default: peft's for the LM type)."
        ),
    ] = None,
    max_len: Annotated[
        int, typer.Option("--max-len", min=8, help="Report tokens kept (EOS included).")
    ] = 320,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Epochs (default 10).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Pairs per micro-batch.")] = 8,
    accum: Annotated[int, typer.Option("--accum", min=1, help="Micro-batches per optimizer step.")] = 1,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW) of the projector.")] = 1e-3,
    llm_lr: Annotated[
        float | None,
        typer.Option("--llm-lr", help="Peak learning rate of the LM's trained weights (default --lr)."),
    ] = None,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.01,
    grad_clip: Annotated[
        float, typer.Option("--grad-clip", min=0.0, help="Max gradient norm (0: off).")
    ] = 1.0,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Linear warm-up steps before cosine decay.")
    ] = 50,
    val_pairs: Annotated[
        Path | None,
        typer.Option(
            "--val-pairs", help="Held-out pairs: loss and clinical-efficacy F1 of greedy reports per epoch."
        ),
    ] = None,
    val_max: Annotated[
        int, typer.Option("--val-max", min=1, help="Validation pairs used (the first N).")
    ] = 64,
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
        typer.Option("--input-cache", help="Folder for preprocessed volumes (as in finetune clip)."),
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
    """Train a report generator: frozen image encoder -> projector -> causal LM (projector only, LoRA, or the
    whole LM); the run directory becomes a report model for `ctvl generate-report --model RUN`."""
    from ctvl_cli.api.embed import DEFAULT_MODEL
    from ctvl_cli.errors import UsageError
    from ctvl_cli.train.report import ReportConfig, finetune_report

    cfg = None
    if not resume:
        if pairs is None or llm is None:
            raise UsageError("--pairs and --llm are required", hint="e.g. --pairs pairs.csv --llm path/to/lm")
        cfg = ReportConfig(
            pairs=str(pairs),
            llm=llm,
            model=model or DEFAULT_MODEL,
            weights=weights,
            tokenizer=str(tokenizer) if tokenizer else None,
            projector=projector,
            queries=queries,
            heads=heads,
            pool_kernel=pool_kernel,
            llm_train=llm_train,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            lora_targets=[t.strip() for t in lora_targets.split(",") if t.strip()] if lora_targets else None,
            max_len=max_len,
            epochs=epochs or 10,
            batch_size=batch_size,
            accum=accum,
            lr=lr,
            llm_lr=llm_lr,
            weight_decay=weight_decay,
            warmup_steps=warmup,
            grad_clip=grad_clip,
            val_pairs=str(val_pairs) if val_pairs else None,
            val_max=val_max,
            seed=seed,
            save_every=save_every,
            max_steps=max_steps,
            image_root=str(image_root) if image_root else None,
            input_cache=str(input_cache) if input_cache else None,
        )
    on_event, close = _event_printer()
    try:
        res = finetune_report(
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
    output.write_record(
        {
            "out": res.out,
            "epochs_done": res.epochs_done,
            "steps": res.steps,
            "last_loss": round(res.last_loss, 5),
            "llm_train": res.llm_train,
            "metric": res.metric_name,
            "best_metric": res.best_metric,
            "resumed_from_step": res.resumed_from_step,
            "interrupted": res.interrupted,
        },
        fmt,
    )
    if res.interrupted:
        output.error(
            f"interrupted at step {res.steps}; checkpoint saved (hint: ctvl finetune report --out {out} --resume)"
        )
        raise typer.Exit(EXIT_INTERRUPTED)

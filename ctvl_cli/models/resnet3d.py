"""``resnet18-clip``: 3D ResNet-18 CLIP of "More performant and scalable" / GreenRFM (read from GreenRFM's
``models/clip.py``, the public successor of the paper's code).

* image: torchvision's ``r3d_18`` layout (VideoResNet: stem, four stages of two BasicBlocks with 3x3x3 convs,
  stride 2 on all axes in stages 2-4, global average pool, no fc) with the stem conv replaced by a 1-channel
  ``Conv3d(1, 64, k, stride=k)`` (k = 2 "standard", 4 "lite") -> 512-d; module names equal torchvision's
  (``visual.stem.0``, ``visual.layer1.0.conv1.0`` ...), so r3d-18 checkpoints map by prefix;
* text: a BERT encoder with CXR-BERT-specialized's architecture (built from a config, never downloaded), CLS
  token of the last hidden state;
* heads: ``to_visual_latent`` Linear(512, d) and ``to_text_latent`` Linear(hidden, d), both without bias;
  learnable ``logit_scale`` initialised to log(1/0.07).

Params: ``dim_latent`` (512), ``stem_kernel`` (2), ``blocks`` ([2, 2, 2, 2]), ``widths`` ([64, 128, 256, 512]),
``text_config`` (BertConfig overrides; ``vocab_size`` follows the tokenizer), ``vocab_size``, ``pad_id``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ctvl_cli.errors import InputError, UsageError
from ctvl_cli.models.base import CTModel, masked_mean

CXR_BERT = {  # microsoft/BiomedVLP-CXR-BERT-specialized (BERT-base dimensions)
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}


class BasicBlock(nn.Module):
    """torchvision ``video.resnet.BasicBlock`` with ``Conv3DSimple`` (3x3x3, padding 1, no bias)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout))
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + res)


class R3D(nn.Module):
    def __init__(self, *, stem_kernel: int, blocks, widths) -> None:
        super().__init__()
        k = int(stem_kernel)
        self.stem = nn.Sequential(
            nn.Conv3d(1, widths[0], k, stride=k, bias=False), nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True)
        )
        cin = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(cin, w, stride)] + [BasicBlock(w, w, 1) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            cin = w
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x


class ResNet18Clip(CTModel):
    def __init__(
        self,
        *,
        dim_latent: int = 512,
        stem_kernel: int = 2,
        blocks=(2, 2, 2, 2),
        widths=(64, 128, 256, 512),
        text_config: Mapping[str, Any] | None = None,
        vocab_size: int | None = None,
        pad_id: int | None = None,
    ) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        if len(blocks) != 4 or len(widths) != 4:
            raise UsageError("resnet18-clip: blocks and widths need four stages")
        self.embed_dim, self.has_text = dim_latent, True
        self.visual = R3D(stem_kernel=stem_kernel, blocks=tuple(blocks), widths=tuple(widths))
        cfg = dict(CXR_BERT)
        cfg.update(dict(text_config or {}))
        if vocab_size is not None:
            cfg["vocab_size"] = int(vocab_size)
        if pad_id is not None:
            cfg["pad_token_id"] = int(pad_id)
        self.text = BertModel(BertConfig(**cfg), add_pooling_layer=False)
        self.to_visual_latent = nn.Linear(self.visual.out_dim, dim_latent, bias=False)
        self.to_text_latent = nn.Linear(cfg["hidden_size"], dim_latent, bias=False)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def image_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 1:
            raise InputError(f"resnet18-clip expects (B, 1, X, Y, Z), got {tuple(x.shape)}")
        return self.visual(x)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        f = self.image_feature_map(x).mean(dim=(2, 3, 4))
        return F.normalize(self.to_visual_latent(f), dim=-1)

    def pool_regions(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.to_visual_latent(masked_mean(f, w)), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return F.normalize(self.to_text_latent(h[:, 0]), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100)


def build(params: Mapping[str, Any] | None = None) -> ResNet18Clip:
    p = dict(params or {})
    known = {"dim_latent", "stem_kernel", "blocks", "widths", "text_config", "vocab_size", "pad_id"}
    unknown = sorted(set(p) - known)
    if unknown:
        raise UsageError(f"unknown resnet18-clip params {unknown}", hint=f"known: {', '.join(sorted(known))}")
    return ResNet18Clip(**p)

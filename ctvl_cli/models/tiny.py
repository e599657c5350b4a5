"""``tiny-clip``: a small CLIP-style 3D CNN + text encoder. Used randomly initialised for tests
(``ctvl-tiny-test``) and as the backbone family for small trained models."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ctvl_cli.models.base import CTModel, masked_mean


class TinyClip(CTModel):
    def __init__(
        self,
        *,
        embed_dim: int = 32,
        widths=(8, 16, 32),
        vocab_size: int = 256,
        text_width: int = 32,
        text_layers: int = 1,
        max_length: int = 64,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.embed_dim, self.has_text, self.normalize = embed_dim, True, normalize
        layers: list[nn.Module] = []
        cin = 1
        for w in widths:
            layers += [nn.Conv3d(cin, w, 3, stride=2, padding=1), nn.GroupNorm(min(4, w), w), nn.GELU()]
            cin = w
        self.visual = nn.Sequential(*layers)
        self.visual_proj = nn.Linear(cin, embed_dim)
        self.tok = nn.Embedding(vocab_size, text_width)
        self.pos = nn.Parameter(torch.zeros(max_length, text_width))
        layer = nn.TransformerEncoderLayer(
            text_width,
            nhead=max(1, text_width // 16),
            dim_feedforward=2 * text_width,
            batch_first=True,
            dropout=0.0,
        )
        self.text = nn.TransformerEncoder(layer, num_layers=text_layers, enable_nested_tensor=False)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def image_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)

    def image_stage_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i in range(0, len(self.visual), 3):  # conv, norm, GELU per stage
            x = self.visual[i + 2](self.visual[i + 1](self.visual[i](x)))
            out.append(x)
        return out

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        e = self.visual_proj(self.visual(x).mean(dim=(2, 3, 4)))
        return F.normalize(e, dim=-1) if self.normalize else e

    def pool_regions(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        e = self.visual_proj(masked_mean(f, w))
        return F.normalize(e, dim=-1) if self.normalize else e

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        h = self.tok(input_ids) + self.pos[:n]
        h = self.text(h, src_key_padding_mask=attention_mask == 0)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        e = self.text_proj((h * m).sum(1) / m.sum(1).clamp(min=1))
        return F.normalize(e, dim=-1) if self.normalize else e

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100)


def build(params: Mapping) -> TinyClip:
    p = dict(params)
    if "widths" in p:
        p["widths"] = tuple(p["widths"])
    return TinyClip(**p)

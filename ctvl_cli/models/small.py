"""``small-clip``: a compact CLIP-style model for CPU training — residual 3D CNN image tower and a pre-norm
transformer text tower. ``ctvl-phantom`` (the embedded default) is a ``small-clip``."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ctvl_cli.models.base import CTModel, masked_max, masked_mean


def _norm(kind: str, c: int) -> nn.Module:
    return nn.BatchNorm3d(c) if kind == "bn" else nn.GroupNorm(min(8, c), c)


class Stage(nn.Module):
    """Strided conv (downsample x2) followed by one residual block (or none: ``res=False``)."""

    def __init__(self, cin: int, cout: int, norm: str = "gn", res: bool = True) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv3d(cin, cout, 3, stride=2, padding=1), _norm(norm, cout), nn.GELU())
        if not res:
            self.res = None
            return
        self.res = nn.Sequential(
            nn.Conv3d(cout, cout, 3, padding=1),
            _norm(norm, cout),
            nn.GELU(),
            nn.Conv3d(cout, cout, 3, padding=1),
            _norm(norm, cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x if self.res is None else F.gelu(x + self.res(x))


class SmallClip(CTModel):
    def __init__(
        self,
        *,
        embed_dim: int = 128,
        widths=(16, 32, 64, 128),
        pool: str = "avgmax",
        vocab_size: int = 2048,
        text_width: int = 128,
        text_layers: int = 3,
        text_heads: int = 4,
        max_length: int = 256,
        pad_id: int = 0,
        proj_norm: str = "none",
        norm: str = "gn",
        first_res: bool = True,
        skip_stage: int | None = None,
        skip_dim: int = 16,
        skip_branch: bool = False,
    ) -> None:
        super().__init__()
        if pool not in ("avg", "avgmax"):
            raise ValueError(f"pool must be avg or avgmax, not {pool!r}")
        if proj_norm not in ("none", "bn"):
            raise ValueError(f"proj_norm must be none or bn, not {proj_norm!r}")
        if norm not in ("gn", "bn"):
            raise ValueError(f"norm must be gn or bn, not {norm!r}")
        self.embed_dim, self.has_text, self.pool = embed_dim, True, pool
        # "bn": parameter-free BatchNorm on both projections before L2 normalisation. It removes the component
        # shared by all scans / all reports, which otherwise dominates cosine similarities at initialisation and
        # stalls contrastive training from scratch at loss = ln(batch) (observed on phantoms).
        self.img_norm = nn.BatchNorm1d(embed_dim, affine=False) if proj_norm == "bn" else nn.Identity()
        self.txt_norm = nn.BatchNorm1d(embed_dim, affine=False) if proj_norm == "bn" else nn.Identity()
        stages, cin = [], 1
        for i, w in enumerate(widths):
            # "bn" (BatchNorm3d) trains a from-scratch image tower several times faster than "gn" on phantoms.
            # first_res=False: the full-resolution stage is a strided conv only (its residual block costs half of
            # the tower's compute at 64^3).
            stages.append(Stage(cin, w, norm, res=first_res or i > 0))
            cin = w
        # channels-last 3-D convolutions: ~1.8x faster training steps on CPU (oneDNN) than NCDHW; same weights
        # (load_state_dict copies into these tensors and .to(device) keeps their layout)
        self.visual = nn.Sequential(*stages).to(memory_format=torch.channels_last_3d)
        self.visual_proj = nn.Linear(cin * (2 if pool == "avgmax" else 1), embed_dim)
        # skip path (skip_stage=K): a 1x1x1 convolution on the finer map after stage K, its global maximum
        # projected and added to the embedding. Findings of one or two cells (nodules, calcifications) are
        # detectable on that map but washed out by the last 4^3 map's pooling. skip_proj starts at zero, so a model
        # warm-started from weights without the path embeds exactly as before at step 0. skip_branch: the path reads
        # its own copy of stages 0..K (skip_trunk; from weights without it, a copy of the trunk's), so training it
        # as a detector leaves the trunk, and everything aligned to it, as it was.
        self.skip_stage = None if skip_stage is None else int(skip_stage)
        self.skip = self.skip_proj = self.skip_trunk = None
        if skip_stage is not None:
            if not 0 <= self.skip_stage < len(widths) - 1:
                raise ValueError(f"skip_stage must name a stage before the last (0..{len(widths) - 2})")
            if skip_branch:
                self.skip_trunk = copy.deepcopy(self.visual[: self.skip_stage + 1])
            self.skip = nn.Conv3d(widths[self.skip_stage], skip_dim, 1)
            self.skip_proj = nn.Linear(skip_dim, embed_dim)
            nn.init.zeros_(self.skip_proj.weight)
            nn.init.zeros_(self.skip_proj.bias)
        self.tok = nn.Embedding(vocab_size, text_width, padding_idx=pad_id)
        self.pos = nn.Parameter(torch.randn(max_length, text_width) * 0.01)
        layer = nn.TransformerEncoderLayer(
            text_width,
            nhead=text_heads,
            dim_feedforward=4 * text_width,
            batch_first=True,
            dropout=0.0,
            norm_first=True,
            activation="gelu",
        )
        self.text = nn.TransformerEncoder(layer, num_layers=text_layers, enable_nested_tensor=False)
        self.text_norm = nn.LayerNorm(text_width)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def _visual(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x.contiguous(memory_format=torch.channels_last_3d))

    def image_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self._visual(x).contiguous()

    @property
    def pool_dim(self) -> int:
        return self.visual_proj.in_features

    def image_stage_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, out = x.contiguous(memory_format=torch.channels_last_3d), []
        for stage in self.visual:
            x = stage(x)
            out.append(x.contiguous())
        return out

    def _skip_input(self, x: torch.Tensor, maps: list[torch.Tensor] | None) -> torch.Tensor:
        """The map the skip path reads: after its own branch, else the trunk's stage ``skip_stage``."""
        if self.skip_trunk is not None:
            return self.skip_trunk(x.contiguous(memory_format=torch.channels_last_3d)).contiguous()
        return maps[self.skip_stage]

    def encode_image_pooled(self, x: torch.Tensor, *, with_map: bool = False, map_stage: int = -1):
        """(embedding, pooled trunk features[, feature map]): training's auxiliary label head reads the pooled
        features (on the L2-normalised embedding its gradient is too weak to train the tower from scratch), its
        dense mask head the feature map of the same pass (after stage ``map_stage``; -1: the last). With a skip
        path, the map of its stage is the one the path reads (its own branch's with ``skip_branch``)."""
        last = len(self.visual) - 1
        ms = map_stage % len(self.visual)
        skip_map = self.skip is not None and with_map and ms == self.skip_stage
        if (self.skip is not None and self.skip_trunk is None) or (with_map and ms != last and not skip_map):
            maps = self.image_stage_maps(x)
            f = maps[-1]
        else:
            maps, f = None, self._visual(x)
        s = None if self.skip is None else self._skip_input(x, maps)
        fmap = None
        if with_map:
            fmap = s if skip_map else (f if ms == last else maps[ms])
        p = f.mean(dim=(2, 3, 4))
        if self.pool == "avgmax":
            p = torch.cat([p, f.amax(dim=(2, 3, 4))], dim=1)
        e = self.visual_proj(p)
        if s is not None:
            e = e + self.skip_proj(self.skip(s).amax(dim=(2, 3, 4)))
        e = F.normalize(self.img_norm(e), dim=-1)
        return (e, p, fmap) if with_map else (e, p)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_image_pooled(x)[0]

    def encode_regions(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.skip is None:
            return super().encode_regions(x, weights)
        maps = self.image_stage_maps(x)
        f, s = maps[-1], self.skip(self._skip_input(x, maps))
        return self._pool_regions(
            f, self.region_grid(weights, f.shape[2:]), s, self.region_grid(weights, s.shape[2:])
        )

    def pool_regions(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.skip is not None:
            raise ValueError("a small-clip with a skip path pools regions from two maps: use encode_regions")
        return self._pool_regions(f, w)

    def _pool_regions(self, f, w, s=None, ws=None) -> torch.Tensor:
        p = masked_mean(f, w)
        if self.pool == "avgmax":
            p = torch.cat([p, masked_max(f, w)], dim=-1)
        b, r = p.shape[:2]
        e = self.visual_proj(p.reshape(b * r, -1))
        if s is not None:
            e = e + self.skip_proj(masked_max(s, ws).reshape(b * r, -1))
        e = self.img_norm(e)
        return F.normalize(e, dim=-1).reshape(b, r, -1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        h = self.tok(input_ids) + self.pos[:n]
        h = self.text_norm(self.text(h, src_key_padding_mask=attention_mask == 0))
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        e = self.text_proj((h * m).sum(1) / m.sum(1).clamp(min=1))
        return F.normalize(self.txt_norm(e), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100)


def optional_keys(model: SmallClip) -> list[str]:
    """Parameters weights may lack (``create_model(allow_new=True)``): the zero-initialised skip path."""
    return [k for k in model.state_dict() if k.split(".")[0] in ("skip", "skip_proj", "skip_trunk")]


def init_new(model: SmallClip, keys: list[str]) -> None:
    """After loading weights that lack ``keys`` (optional ones): a new skip branch starts as a copy of the trunk's
    stages 0..K, so it reads the features the weights learnt rather than random ones."""
    if model.skip_trunk is not None and any(k.startswith("skip_trunk.") for k in keys):
        for i, stage in enumerate(model.skip_trunk):
            stage.load_state_dict(model.visual[i].state_dict())


def build(params: Mapping) -> SmallClip:
    p = dict(params)
    if "widths" in p:
        p["widths"] = tuple(p["widths"])
    return SmallClip(**p)

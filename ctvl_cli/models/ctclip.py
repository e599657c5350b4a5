"""``ctclip``: CT-CLIP v2 (ibrahimethemhamamci/CT-CLIP, "v2.0.0 with mean pooling"): CTViT image encoder with
vector quantisation, CXR-BERT text encoder, bias-free latent projections and a learned temperature.

Own implementation of the encoder path from the facts in ``../shared/parity/README.md`` (read from the official
code); module and parameter names equal the official ``CTCLIP`` state_dict, so ``CT-CLIP_v2.pt`` loads unchanged
(the ``text_transformer.embeddings.position_ids`` key older transformers saved is dropped). Runs on any device.

Image input: ``(B, 1, D, H, W)`` = CT-CLIP's array order (card orientation ``SLP``), H = W = ``image_size``,
D a multiple of ``temporal_patch_size``.

Variants: ``clip`` (and VocabFine, same keys) and ``classfine`` (ClassFine checkpoints: the CLIP under
``trained_model.`` plus ``classifier.*``; ``encode_image``/``encode_text`` are the CLIP's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ctvl_cli.errors import InputError, UsageError
from ctvl_cli.models.base import CTModel, masked_mean, normalize_checkpoint

CTVIT_KEYS = {
    "dim",
    "codebook_size",
    "image_size",
    "patch_size",
    "temporal_patch_size",
    "spatial_depth",
    "temporal_depth",
    "dim_head",
    "heads",
    "channels",
}


class LayerNormBuf(nn.Module):
    """CTViT's LayerNorm: learned ``gamma``, ``beta`` a (saved, never trained) buffer, eps 1e-5."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta)


class PEG(nn.Module):
    """Depthwise 3x3x3 conv over the video view ``(B, t, h, w, dim)`` of the tokens (a raw reshape, whatever the
    token layout), zero padding 1 on h/w and causal padding (2, 0) on t."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dsconv = nn.Conv3d(dim, dim, 3, groups=dim)

    def forward(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        orig = x.shape
        v = x.reshape(*shape, -1).permute(0, 4, 1, 2, 3)
        v = self.dsconv(F.pad(v, (1, 1, 1, 1, 2, 0)))
        return v.permute(0, 2, 3, 4, 1).reshape(orig)


class Attention(nn.Module):
    """Cosine-similarity attention: queries from the normalised input, keys/values from the raw input, q and k
    L2-normalised and scaled per dimension, logits x 8, optional additive bias."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm = LayerNormBuf(dim)
        self.context_norm = LayerNormBuf(dim)  # in the state_dict; self-attention never uses it
        self.null_kv = nn.Parameter(torch.zeros(heads, 0, dim_head))  # zero null key/values: no effect
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.to_q(self.norm(x))
        k, v = self.to_kv(x).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        sim = (q @ k.transpose(-1, -2)) * 8.0
        if bias is not None:
            sim = sim + bias
        out = sim.softmax(dim=-1) @ v
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int) -> nn.Sequential:
    inner = int(4 * (2 / 3) * dim)
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner * 2, bias=False),
        GEGLU(),
        nn.Dropout(0.0),
        nn.Linear(inner, dim, bias=False),
    )


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, dim_head: int, heads: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([PEG(dim), Attention(dim, dim_head, heads), nn.Identity(), feed_forward(dim)])
            for _ in range(depth)
        )
        self.norm_out = LayerNormBuf(dim)

    def forward(
        self, x: torch.Tensor, shape: tuple[int, ...], bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        for peg, attn, _, ff in self.layers:
            x = peg(x, shape) + x
            x = attn(x, bias) + x
            x = ff(x) + x
        return self.norm_out(x)


class ContinuousPositionBias(nn.Module):
    """MLP 2 -> dim -> dim -> heads (LeakyReLU 0.1) on sign(r) * log(|r| + 1) of (row, col) offsets q - k."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.net = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(2, dim), nn.LeakyReLU(0.1)),
                nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(0.1)),
                nn.Linear(dim, heads),
            ]
        )

    def forward(self, h: int, w: int, device) -> torch.Tensor:
        grid = (
            torch.stack(
                torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
            )
            .reshape(2, -1)
            .T.float()
        )  # (hw, 2), row-major
        rel = grid[:, None, :] - grid[None, :, :]
        x = torch.sign(rel) * torch.log(rel.abs() + 1)
        for layer in self.net:
            x = layer(x)
        return x.permute(2, 0, 1)  # (heads, hw, hw)


class Codebook(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("initted", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(1, size))
        self.register_buffer("embed", torch.zeros(1, size, dim))


class VQ(nn.Module):
    """Cosine-similarity codebook lookup (eval): argmax over L2-normalised rows, returns the raw codebook row."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self._codebook = Codebook(size, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embed = self._codebook.embed[0]
        sim = F.normalize(x, dim=-1) @ F.normalize(embed, dim=-1).T
        idx = sim.argmax(dim=-1)
        return embed[idx], idx


class CTViT(nn.Module):
    def __init__(
        self,
        *,
        dim,
        codebook_size,
        image_size,
        patch_size,
        temporal_patch_size,
        spatial_depth,
        temporal_depth,
        dim_head,
        heads,
        channels=1,
    ) -> None:
        super().__init__()
        self.image_size, self.patch, self.tpatch, self.channels = (
            image_size,
            patch_size,
            temporal_patch_size,
            channels,
        )
        self.hw = image_size // patch_size
        pdim = channels * patch_size * patch_size
        self.spatial_rel_pos_bias = ContinuousPositionBias(dim, heads)
        # first-frame patch embedding and pixel decoders exist in the checkpoints; the encoder never uses them
        self.to_patch_emb_first_frame = nn.Sequential(
            nn.Identity(), nn.LayerNorm(pdim), nn.Linear(pdim, dim), nn.LayerNorm(dim)
        )
        self.to_patch_emb = nn.Sequential(
            nn.Identity(),
            nn.LayerNorm(pdim * temporal_patch_size),
            nn.Linear(pdim * temporal_patch_size, dim),
            nn.LayerNorm(dim),
        )
        self.enc_spatial_transformer = Transformer(dim, spatial_depth, dim_head, heads)
        self.enc_temporal_transformer = Transformer(dim, temporal_depth, dim_head, heads)
        self.vq = VQ(codebook_size, dim)
        self.to_pixels_first_frame = nn.Sequential(nn.Linear(dim, pdim))
        self.to_pixels = nn.Sequential(nn.Linear(dim, pdim * temporal_patch_size))

    def patch_tokens(self, video: torch.Tensor) -> torch.Tensor:
        b, c, d, hh, ww = video.shape
        if c != self.channels or hh != self.image_size or ww != self.image_size or d % self.tpatch:
            raise InputError(
                f"CTViT expects (B, {self.channels}, D, {self.image_size}, {self.image_size}) with D a multiple of "
                f"{self.tpatch}, got {tuple(video.shape)}",
                hint="feed the output of the model card's preprocessing",
            )
        t, p, pt = d // self.tpatch, self.patch, self.tpatch
        x = video.reshape(b, c, t, pt, self.hw, p, self.hw, p)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, t, self.hw, self.hw, c * pt * p * p)  # (c pt p1 p2)
        return self.to_patch_emb(x)

    def encode(self, tokens: torch.Tensor, *, keep: dict | None = None) -> torch.Tensor:
        b, t, h, w, dim = tokens.shape
        shape = (b, t, h, w)
        bias = self.spatial_rel_pos_bias(h, w, tokens.device)
        x = self.enc_spatial_transformer(tokens.reshape(b * t, h * w, dim), shape, bias)
        x = x.reshape(b, t, h, w, dim)
        if keep is not None:
            keep["spatial_attn_bias"], keep["spatial_transformer_out"] = bias, x
        x = x.permute(0, 2, 3, 1, 4).reshape(b * h * w, t, dim)
        x = self.enc_temporal_transformer(x, shape)
        if keep is not None:
            keep["temporal_transformer_out"] = x
        return x.reshape(b, h, w, t, dim).permute(0, 3, 1, 2, 4)

    def forward(self, video: torch.Tensor, *, keep: dict | None = None) -> torch.Tensor:
        """``(B, 1, D, H, W)`` -> VQ codebook rows ``(B, t, h, w, dim)``."""
        tokens = self.patch_tokens(video)
        pre = self.encode(tokens, keep=keep)
        out, idx = self.vq(pre)
        if keep is not None:
            keep.update(patch_tokens=tokens, pre_vq_tokens=pre, vq_indices=idx)
        return out


class CTCLIPCore(nn.Module):
    """The official ``CTCLIP`` module tree (encoder path)."""

    def __init__(
        self, *, ctvit: Mapping, bert: Mapping, dim_image: int, dim_text: int, dim_latent: int
    ) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        self.temperature = nn.Parameter(torch.tensor(1.0))
        cfg = BertConfig(**{"pad_token_id": 0, "layer_norm_eps": 1e-12, **dict(bert)})
        cfg._attn_implementation = "eager"
        self.text_transformer = BertModel(cfg, add_pooling_layer=True)
        self.visual_transformer = CTViT(**dict(ctvit))
        self.to_text_latent = nn.Linear(dim_text, dim_latent, bias=False)
        self.to_visual_latent = nn.Linear(dim_image, dim_latent, bias=False)
        self.to_text_latent_extra = nn.Linear(
            dim_text, dim_latent, bias=False
        )  # unused (extra_latent_projection)
        self.to_visual_latent_extra = nn.Linear(dim_image, dim_latent, bias=False)

    def image_latents(self, video: torch.Tensor, keep: dict | None = None) -> torch.Tensor:
        enc = self.visual_transformer(video, keep=keep)
        pooled = enc.mean(dim=1).reshape(enc.shape[0], -1)  # mean over t, flattened (h, w, dim)
        if keep is not None:
            keep.update(encoded_tokens=enc, pooled_image_embeds=pooled)
        return F.normalize(self.to_visual_latent(pooled), dim=-1)

    def text_latents(self, ids: torch.Tensor, mask: torch.Tensor, keep: dict | None = None) -> torch.Tensor:
        hidden = self.text_transformer(input_ids=ids, attention_mask=mask).last_hidden_state
        if keep is not None:
            keep.update(text_hidden=hidden, text_cls=hidden[:, 0])
        return F.normalize(self.to_text_latent(hidden[:, 0]), dim=-1)


class CTClip(CTModel):
    def __init__(self, *, variant: str = "clip", num_classes: int = 18, **core: Any) -> None:
        super().__init__()
        if variant not in ("clip", "classfine"):
            raise UsageError(f"unknown ctclip variant {variant!r}", hint="clip or classfine")
        self.variant, self.has_text = variant, True
        self.embed_dim = int(core["dim_latent"])
        clip = CTCLIPCore(**core)
        if variant == "classfine":
            self.trained_model = clip
            self.classifier = nn.Linear(self.embed_dim, num_classes)
        else:
            self.clip = clip

    @property
    def core(self) -> CTCLIPCore:
        return self.trained_model if self.variant == "classfine" else self.clip

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        pre = "" if self.variant == "classfine" else "clip."
        return {k[len(pre) :]: v for k, v in self.state_dict().items()}

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.core.image_latents(x)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.core.text_latents(input_ids, attention_mask)

    def logit_scale(self) -> torch.Tensor:
        return self.core.temperature.exp()

    def image_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """VQ token grid as ``(B, dim, t, h, w)``."""
        return self.core.visual_transformer(x).permute(0, 4, 1, 2, 3)

    def pool_regions(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """CT-CLIP projects the (h, w) grid of slice-averaged tokens, flattened: each (h, w) column is averaged
        over t under the region's weights; columns the region does not touch take the region's mean token."""
        enc = f.permute(0, 2, 3, 4, 1)  # (B, t, h, w, dim)
        col_w = w.sum(2)  # (B, R, h, w)
        col = torch.einsum("bthwd,brthw->brhwd", enc, w.to(enc.dtype)) / col_w.clamp(min=1e-12)[..., None]
        overall = masked_mean(f, w)[:, :, None, None, :]
        col = torch.where((col_w > 0)[..., None], col, overall)
        b, r = col.shape[:2]
        return F.normalize(self.core.to_visual_latent(col.reshape(b, r, -1)), dim=-1)


def checkpoint_filter(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Official CT-CLIP files -> this module: unwraps ``state_dict``/``model``, strips ``module.``, drops
    ``*.embeddings.position_ids``; plain CTCLIP keys go under ``clip.`` (ClassFine's ``trained_model.``/
    ``classifier.`` keys are already this module's)."""
    out = {}
    for k, v in normalize_checkpoint(state_dict).items():
        if not k.startswith(("trained_model.", "classifier.", "clip.")):
            k = "clip." + k
        out[k] = v
    return out


def build(params: Mapping[str, Any] | None = None) -> CTClip:
    p = dict(params or {})
    known = {"ctvit", "bert", "dim_image", "dim_text", "dim_latent", "variant", "num_classes"}
    unknown = sorted(set(p) - known)
    if unknown:
        raise UsageError(f"unknown ctclip params {unknown}", hint=f"known: {', '.join(sorted(known))}")
    bad = sorted(set(p.get("ctvit", {})) - CTVIT_KEYS)
    if bad:
        raise UsageError(f"unknown ctvit params {bad}")
    return CTClip(**p)

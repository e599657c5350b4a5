"""The interface every ctvl model implements."""

from __future__ import annotations

import torch
from torch import nn

from ctvl_cli.errors import UsageError


class CTModel(nn.Module):
    """Base class. Inputs are preprocessed tensors of shape (B, 1, *card.preprocess.shape)."""

    embed_dim: int = 0
    has_text: bool = False

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:  # (B, D)
        raise NotImplementedError

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # (B, D)
        raise UsageError(f"{type(self).__name__} has no text encoder", hint="use a vision-language model")

    def logit_scale(self) -> torch.Tensor:
        """Multiplier applied to cosine similarities (already exponentiated)."""
        return torch.tensor(1.0)

    def image_feature_map(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, d, h, w)
        raise UsageError(f"{type(self).__name__} exposes no spatial feature map")

    def image_stage_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature map after each stage of the image tower, finest first; the last is
        :meth:`image_feature_map`. Models that do not expose their stages give only that one."""
        return [self.image_feature_map(x)]

    # ---- per-organ (region) embeddings ------------------------------------------------------------------------
    def encode_regions(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Region embeddings ``(B, R, D)`` in the same space as :meth:`encode_image`.

        ``weights`` ``(B, R, *input_shape)`` in [0, 1] are organ masks already in the preprocessed input space (the
        fraction of each input voxel inside the organ). They are averaged onto the feature grid, and the model's
        own pooling + projection is applied to the features weighted by them; an all-ones mask gives exactly
        ``encode_image(x)``."""
        f = self.image_feature_map(x)
        return self.pool_regions(f, self.region_grid(weights, f.shape[2:]))

    def region_grid(self, weights: torch.Tensor, grid) -> torch.Tensor:
        """Input-space weights ``(B, R, *input_shape)`` -> feature-grid weights ``(B, R, *grid)`` (box average)."""
        b, r = weights.shape[:2]
        w = torch.nn.functional.adaptive_avg_pool3d(
            weights.reshape(b * r, 1, *weights.shape[2:]), tuple(grid)
        )
        return w.reshape(b, r, *grid)

    def pool_regions(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # (B, R, D)
        raise UsageError(
            f"{type(self).__name__} has no region pooling", hint="use a model with a feature map"
        )


def masked_mean(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted mean of feature map ``f`` (B, C, *g) under weights ``w`` (B, R, *g) -> (B, R, C)."""
    fb = f.flatten(2)
    wb = w.flatten(2).to(fb.dtype)
    return torch.einsum("bcn,brn->brc", fb, wb) / wb.sum(-1, keepdim=True).clamp(min=1e-12)


def masked_max(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Maximum of ``f`` over the grid cells with positive weight -> (B, R, C)."""
    fb = f.flatten(2).unsqueeze(1)  # (B, 1, C, N)
    on = (w.flatten(2) > 0).unsqueeze(2)  # (B, R, 1, N)
    return torch.where(on, fb, torch.full_like(fb, float("-inf"))).amax(-1)


def normalize_checkpoint(state_dict) -> dict[str, torch.Tensor]:
    """Fixes every official checkpoint needs before its keys are mapped: the ``state_dict``/``model`` wrapper
    unwrapped, DDP's ``module.`` prefix stripped, ``*.embeddings.position_ids`` dropped (a buffer transformers
    < 4.31 saved, rejected by newer ones), bf16/fp16/fp64 tensors cast to float32 (integer buffers kept)."""
    from ctvl_cli.registry.weights import unwrap_state_dict

    out: dict[str, torch.Tensor] = {}
    for key, v in unwrap_state_dict(state_dict).items():
        k = key[len("module.") :] if key.startswith("module.") else key
        if k.endswith("embeddings.position_ids"):
            continue
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != torch.float32:
            v = v.float()
        out[k] = v
    return out

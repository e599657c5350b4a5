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

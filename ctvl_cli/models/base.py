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

"""Inflated-3D ResNet-152 (I3D), the image backbone of Merlin (merlin-vlm 0.0.7 ``I3ResNet``) and of Astra.

Own plain-torch implementation of the architecture the official code obtains by inflating torchvision's 2-D
ResNet-152 (no torchvision needed). Submodule and parameter names equal the official ``I3ResNet`` names, so an
official state_dict loads unchanged:

* input ``(B, 1, H, W, D)`` in MONAI ``(x, y, z)`` order -> permuted to ``(B, 1, D, H, W)`` -> channel repeated
  x3;
* ``conv1``: Conv3d(3, 64, (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3), no bias) -> ``bn1`` -> ReLU ->
  MaxPool3d(3, stride 2, padding 1) over all three axes (time too);
* ``layer1..layer4``: [3, 8, 36, 3] bottlenecks (torchvision v1.5: the stride sits on the 3x3 conv); ``conv1`` /
  ``conv3`` 1x1x1, ``conv2`` 3x3x3 padding 1 with stride (s, s, s) (time stride = spatial stride), downsample
  Conv3d 1x1x1 stride (s, s, s) + BN; no conv biases;
* BatchNorm eps 1e-5 (the official code reuses 2-D BatchNorm modules on 5-D tensors: same keys, same maths);
* global average pool -> optional ``classifier`` (Conv3d 1x1x1 2048 -> ``num_classes``) and
  ``contrastive_head`` (Conv3d 1x1x1 2048 -> ``contrastive_dim``), both with bias.
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint as checkpoint
from torch import nn

from ctvl_cli.errors import InputError

BLOCKS_152: tuple[int, ...] = (3, 8, 36, 3)
FEATURE_DIM = 2048


class Bottleneck3d(nn.Module):
    """Inflated torchvision bottleneck: 1x1x1 -> 3x3x3 (stride s on all axes) -> 1x1x1, x4 expansion."""

    expansion = 4

    def __init__(self, *, inplanes: int, planes: int, stride: int, downsample: bool) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv3d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(
                nn.Conv3d(inplanes, out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm3d(out)
            )
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


def _make_layer(*, inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [
        Bottleneck3d(
            inplanes=inplanes,
            planes=planes,
            stride=stride,
            downsample=stride != 1 or inplanes != planes * Bottleneck3d.expansion,
        )
    ]
    layers += [
        Bottleneck3d(inplanes=planes * Bottleneck3d.expansion, planes=planes, stride=1, downsample=False)
        for _ in range(1, blocks)
    ]
    return nn.Sequential(*layers)


class I3DResNet(nn.Module):
    """Merlin's ``I3ResNet`` (conv-classifier variant) with optional heads.

    Args:
        blocks: bottlenecks per stage; (3, 8, 36, 3) is ResNet-152.
        num_classes: output channels of ``classifier`` (Merlin: 1,692 phenotypes); 0 = no classifier.
        contrastive_dim: output channels of ``contrastive_head`` (Merlin: 512); 0 = no contrastive head.
    """

    def __init__(
        self, *, blocks: tuple[int, ...] = BLOCKS_152, num_classes: int = 1692, contrastive_dim: int = 512
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            layer = _make_layer(inplanes=inplanes, planes=planes, blocks=n, stride=1 if i == 0 else 2)
            self.add_module(f"layer{i + 1}", layer)
            inplanes = planes * Bottleneck3d.expansion
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.classifier = nn.Conv3d(inplanes, num_classes, kernel_size=1, bias=True) if num_classes else None
        self.contrastive_head = (
            nn.Conv3d(inplanes, contrastive_dim, kernel_size=1, bias=True) if contrastive_dim else None
        )
        self.grad_checkpointing = False

    @staticmethod
    def prepare_input(x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W, D)`` (MONAI x, y, z order) -> ``(B, 3, D, H, W)`` as the official forward does."""
        if x.ndim != 5 or x.shape[1] != 1:
            raise InputError(
                f"Merlin I3D expects a (B, 1, H, W, D) tensor, got shape {tuple(x.shape)}",
                hint="feed the output of the model card's preprocessing",
            )
        x = x.permute(0, 1, 4, 2, 3)
        return torch.cat((x, x, x), dim=1)

    def _layer(self, name: str, x: torch.Tensor) -> torch.Tensor:
        layer = getattr(self, name)
        if self.grad_checkpointing and torch.is_grad_enabled() and x.requires_grad:
            return checkpoint.checkpoint(layer, x, use_reentrant=False)
        return layer(x)

    def stages(self, x: torch.Tensor, *, keep: bool = True) -> dict[str, torch.Tensor]:
        """Run the trunk on ``(B, 1, H, W, D)``; return the stage outputs in ``(B, C, D, H, W)`` layout.

        Keys: ``conv1``, ``bn1`` (before ReLU), ``maxpool``, ``layer1``..``layer4``; with ``keep=False`` only
        ``layer4`` (saves memory at production size).
        """
        out: dict[str, torch.Tensor] = {}
        x = self.conv1(self.prepare_input(x))
        if keep:
            out["conv1"] = x
        x = self.bn1(x)
        if keep:
            out["bn1"] = x.clone()
        x = self.maxpool(self.relu(x))
        if keep:
            out["maxpool"] = x
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = self._layer(name, x)
            if keep or name == "layer4":
                out[name] = x
        return out

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """layer4 output ``(B, 2048, D/16, H/32, W/32)``; (B, 2048, 10, 7, 7) for a 224x224x160 input."""
        return self.stages(x, keep=False)["layer4"]

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global average of the layer4 map, ``(B, 2048, 1, 1, 1)`` (what the official heads consume)."""
        return self.avgpool(self.feature_map(x))

    @staticmethod
    def apply_head(head: nn.Conv3d, pooled: torch.Tensor) -> torch.Tensor:
        """Official head application: 1x1x1 conv on the pooled map, then ``(B, C, 1, 1, 1) -> (B, C)``."""
        return head(pooled).flatten(2).mean(2)

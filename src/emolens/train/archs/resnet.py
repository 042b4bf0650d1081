"""``resnet``: a ResNet for 48x48 faces.

A 3x3 stem at full resolution (no stride, no initial max-pool: a 48x48 face has no pixels to
spare), then four stages of basic blocks with 64-128-256-512 channels at width 1 and stride 2
between stages (48 -> 24 -> 12 -> 6), global average pooling, dropout and a linear classifier.
:data:`BLOCKS` blocks per stage: one each, a ResNet-10, because ResNet-18's second block per stage
about doubles the cost (1.2 GMACs per image), too much to train on a 2-core CPU. About 4.9M
parameters and 0.57 GMACs per 48x48 image at width 1. Global pooling makes the network independent
of the input size.
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from .seed_cnn import check_args, conv_bn_relu, init_weights, scaled

STAGES = (64, 128, 256, 512)
BLOCKS = (1, 1, 1, 1)


class BasicBlock(nn.Module):
    """Two conv3x3-BN with a ReLU between, plus the input (1x1 conv-BN projection if the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.conv1(x)))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem -> stages of :class:`BasicBlock` -> global average pool -> dropout -> linear logits."""

    def __init__(self, num_classes: int, in_channels: int, width: float, dropout: float,
                 blocks: tuple[int, ...] = BLOCKS):
        super().__init__()
        cin = scaled(STAGES[0], width)
        self.stem = conv_bn_relu(in_channels, cin)
        stages: list[nn.Module] = []
        for i, (c, n) in enumerate(zip(STAGES, blocks, strict=True)):
            cout = scaled(c, width)
            for j in range(n):
                stages.append(BasicBlock(cin, cout, stride=2 if i > 0 and j == 0 else 1))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stages(self.stem(x))).flatten(1)
        return self.fc(self.dropout(x))


@register("resnet")
def resnet(num_classes: int, in_channels: int, input_size: int, width: float, dropout: float) -> nn.Module:
    """ResNet-10 for faces of at least 8x8 pixels (any size: global pooling). Returns logits."""
    check_args("resnet", num_classes, in_channels, input_size, width, dropout, min_size=8)
    return ResNet(num_classes, in_channels, width, dropout)

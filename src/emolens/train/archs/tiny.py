"""``tiny``: a mini-Xception (Arriaga et al., 2017) for fast CPU inference.

Two plain conv3x3-BN-ReLU layers with 8 channels, then four residual modules of 16-32-64-128
channels. Each module runs two depthwise-separable convs (depthwise 3x3 then pointwise 1x1, each
followed by BN) and a 3x3 stride-2 max-pool, and adds a strided 1x1 conv-BN projection of its
input. Global average pooling, dropout and a linear classifier follow. About 50k parameters
and 6M multiply-adds per 48x48 image at width 1, so its speed is bound by memory traffic more
than arithmetic. Every op is a plain Conv/MaxPool/Add; all BN folds into the convs at export.
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from .seed_cnn import check_args, conv_bn_relu, init_weights, scaled

BASE = 8
MODULES = (16, 32, 64, 128)


def separable(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 conv then pointwise 1x1 conv, then BN (no bias: BN folds into the pointwise conv)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
    )


class XceptionModule(nn.Module):
    """sep-conv, ReLU, sep-conv, max-pool /2, plus a strided 1x1 projection of the input."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.branch = nn.Sequential(
            separable(cin, cout),
            nn.ReLU(inplace=True),
            separable(cout, cout),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """Base convs -> :class:`XceptionModule` x 4 -> ReLU -> global average pool -> dropout -> logits."""

    def __init__(self, num_classes: int, in_channels: int, width: float, dropout: float):
        super().__init__()
        base = scaled(BASE, width)
        self.base = nn.Sequential(conv_bn_relu(in_channels, base), conv_bn_relu(base, base))
        modules: list[nn.Module] = []
        cin = base
        for c in MODULES:
            cout = scaled(c, width)
            modules.append(XceptionModule(cin, cout))
            cin = cout
        self.modules_ = nn.Sequential(*modules)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.modules_(self.base(x)))).flatten(1)
        return self.fc(self.dropout(x))


@register("tiny")
def tiny(num_classes: int, in_channels: int, input_size: int, width: float, dropout: float) -> nn.Module:
    """mini-Xception, under 100k parameters at width 1, for faces of at least 16x16 pixels. Returns logits."""
    check_args("tiny", num_classes, in_channels, input_size, width, dropout, min_size=16)
    return MiniXception(num_classes, in_channels, width, dropout)

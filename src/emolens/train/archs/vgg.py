"""``vgg``: the accuracy model, a VGG variant for 48x48 faces.

In the spirit of Pramerdorfer & Kampel (2016) and Khaireddin & Chen (2021, "VGGNet" on FER2013):
four stages of two conv3x3-BN-ReLU followed by 2x2 max-pooling, 64-128-256-512 channels at
width 1, then two fully connected layers with dropout and the classifier. At 48x48 the last
feature map is 3x3 (``input_size // 16``), flattened. About 10M parameters and 0.47 GMACs per
image at width 1; ``width=0.5`` cuts both roughly four-fold.
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from .seed_cnn import check_args, conv_bn_relu, init_weights, scaled

STAGES = (64, 128, 256, 512)
FC = 1024


class VGG(nn.Module):
    """Conv stages -> flatten -> [dropout, FC, ReLU] x 2 -> dropout -> linear logits."""

    def __init__(self, num_classes: int, in_channels: int, input_size: int, width: float, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for c in STAGES:
            cout = scaled(c, width)
            layers += [conv_bn_relu(cin, cout), conv_bn_relu(cout, cout), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = input_size // 2 ** len(STAGES)
        fc = scaled(FC, width)
        self.head = nn.Sequential(
            nn.Flatten(1),
            nn.Dropout(dropout),
            nn.Linear(cin * side * side, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("vgg")
def vgg(num_classes: int, in_channels: int, input_size: int, width: float, dropout: float) -> nn.Module:
    """VGG-style accuracy model for faces of at least 16x16 pixels. Returns logits."""
    check_args("vgg", num_classes, in_channels, input_size, width, dropout, min_size=16)
    return VGG(num_classes, in_channels, input_size, width, dropout)

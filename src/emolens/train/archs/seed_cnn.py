"""``seed_cnn``: the seeds' baseline, three conv-BN-ReLU-pool blocks and a dense head.

Also home of the small helpers every built-in architecture shares: argument checks
(:func:`check_args`), the width multiplier (:func:`scaled`), conv-BN-ReLU (:func:`conv_bn_relu`)
and weight initialisation (:func:`init_weights`). They live here, in the simplest architecture,
so that each ``archs`` module stays one file.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import ConfigError
from . import register

MIN_CHANNELS = 8
MAX_WIDTH = 8.0


def check_args(
    arch: str, num_classes: int, in_channels: int, input_size: int, width: float, dropout: float,
    min_size: int,
) -> None:
    """Refuse factory arguments the architecture cannot use, with a :class:`ConfigError` naming them."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"{arch}: num_classes must be an integer >= 2, got {num_classes!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels not in (1, 3):
        raise ConfigError(f"{arch}: in_channels must be 1 (gray) or 3 (RGB), got {in_channels!r}")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < min_size:
        raise ConfigError(f"{arch}: input_size must be an integer >= {min_size}, got {input_size!r}")
    if not isinstance(width, int | float) or not math.isfinite(width) or not 0 < width <= MAX_WIDTH:
        raise ConfigError(f"{arch}: width must be in (0, {MAX_WIDTH:g}], got {width!r}")
    if not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"{arch}: dropout must be in [0, 1), got {dropout!r}")


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, rounded, and never below :data:`MIN_CHANNELS`."""
    return max(MIN_CHANNELS, round(channels * width))


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias: BN follows and is folded into it at export) + BatchNorm + ReLU, 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def init_weights(model: nn.Module) -> None:
    """He-normal convs and hidden linear layers, unit BN, and a variance-preserving classifier.

    Hidden linear layers use He fan-in (not the classic N(0, 0.01)): with the small fan-ins of
    48x48 heads, N(0, 0.01) shrinks the signal ~5x per layer and a deep head barely trains.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            last = m is linears[-1]
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear" if last else "relu")
            nn.init.zeros_(m.bias)


class SeedCNN(nn.Module):
    """Three conv-BN-ReLU-maxpool blocks (32-64-128 at width 1), flatten, two dense layers with dropout.

    The flattened size is ``128 * (input_size // 8) ** 2``, so the model is tied to its input size.
    """

    def __init__(self, num_classes: int, in_channels: int, input_size: int, width: float, dropout: float):
        super().__init__()
        c1, c2, c3 = (scaled(c, width) for c in (32, 64, 128))
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, c1), nn.MaxPool2d(2),
            conv_bn_relu(c1, c2), nn.MaxPool2d(2),
            conv_bn_relu(c2, c3), nn.MaxPool2d(2),
        )  # fmt: skip
        side = input_size // 8
        hidden = scaled(256, width)
        self.head = nn.Sequential(
            nn.Flatten(1),
            nn.Dropout(dropout),
            nn.Linear(c3 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("seed_cnn")
def seed_cnn(num_classes: int, in_channels: int, input_size: int, width: float, dropout: float) -> nn.Module:
    """The seeds' baseline CNN (about 1.3M parameters at width 1, 48x48). Returns logits."""
    check_args("seed_cnn", num_classes, in_channels, input_size, width, dropout, min_size=8)
    return SeedCNN(num_classes, in_channels, input_size, width, dropout)

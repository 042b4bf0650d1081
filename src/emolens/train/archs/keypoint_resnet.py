"""Facial-keypoint networks: ``keypoint_resnet`` and the smaller ``keypoint_tiny``.

Both map a face ``(N, C, S, S)`` to ``(N, num_classes)`` numbers; for ``P`` points the caller asks
for ``num_classes = 2 * P`` and reads them as ``u0, v0, u1, v1, ...`` in unit image coordinates
(0 = left/top edge, 1 = right/bottom edge; see :mod:`emolens.train.keypoints.targets`).

Layout: a residual encoder (a strided 3x3 conv-BN-ReLU stem, then stages of :class:`BasicBlock`,
each halving the resolution: ``S/4``, ``S/8``, ``S/16``), a feature pyramid that brings the coarse,
face-wide context back up to ``S/4`` (1x1 lateral convs, nearest-neighbour upsampling, sums), a
3x3 conv-BN-ReLU, and a 1x1 conv giving one heatmap per point (:meth:`KeypointNet.heatmap_logits`).
Each heatmap becomes a point by **soft-argmax** (integral regression): the softmax over its cells
weights the cells' centres, so the point is continuous, finer than a cell and differentiable, and
the same filters find a feature wherever it is in the image (a dense head would have to learn every
position apart). The last layer starts small, so every heatmap starts nearly flat and every point
near the middle. For an odd ``num_classes`` (the registry's generic tests use 7) the last
coordinate is dropped.

At width 1 on 64x64 gray input (16x16 heatmaps): ``keypoint_resnet`` (:data:`RESNET`: stem 16,
stages 32, 2x64, 2x128, pyramid 48) has about 0.7M parameters (2.8 MB as float32) and 26M
multiply-adds; ``keypoint_tiny`` (:data:`TINY`, half the channels) about 0.18M and 7M.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .resnet import BasicBlock
from .seed_cnn import check_args, conv_bn_relu, init_weights, scaled

# (stem channels, ((stage channels, blocks), ...), pyramid channels); every stage halves the resolution
RESNET = (16, ((32, 1), (64, 2), (128, 2)), 48)
TINY = (8, ((16, 1), (32, 2), (64, 2)), 24)
HEAD_GAIN = 0.1  # the heatmap layer starts at 1/10 of its usual initial scale: nearly flat maps


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """``(N, K, H, W)`` heatmap logits -> ``(N, K, 2)`` expected (u, v) cell centres in unit coordinates."""
    n, k, h, w = logits.shape
    p = torch.softmax(logits.flatten(2), dim=2).view(n, k, h, w)
    us = (torch.arange(w, device=logits.device, dtype=p.dtype) + 0.5) / w
    vs = (torch.arange(h, device=logits.device, dtype=p.dtype) + 0.5) / h
    u = (p.sum(dim=2) * us).sum(dim=2)
    v = (p.sum(dim=3) * vs).sum(dim=2)
    return torch.stack([u, v], dim=2)


class KeypointNet(nn.Module):
    """Residual encoder -> feature pyramid to 1/4 resolution -> heatmaps -> soft-argmax coordinates."""

    def __init__(self, num_outputs: int, in_channels: int, layout: tuple[int, tuple[tuple[int, int], ...], int],
                 width: float, dropout: float) -> None:
        super().__init__()
        stem, stages, pyramid = layout
        d = scaled(pyramid, width)
        self.num_outputs = num_outputs
        cin = scaled(stem, width)
        self.stem = conv_bn_relu(in_channels, cin, 3, stride=2)
        levels: list[nn.Module] = []
        laterals: list[nn.Module] = []
        for c, n in stages:
            cout = scaled(c, width)
            levels.append(nn.Sequential(*[BasicBlock(cin if j == 0 else cout, cout, 2 if j == 0 else 1)
                                          for j in range(n)]))
            laterals.append(nn.Conv2d(cout, d, 1))
            cin = cout
        self.levels = nn.ModuleList(levels)
        self.laterals = nn.ModuleList(laterals)
        self.smooth = conv_bn_relu(d, d)
        self.dropout = nn.Dropout(dropout)
        self.heatmaps = nn.Conv2d(d, (num_outputs + 1) // 2, 1)
        init_weights(self)
        with torch.no_grad():
            self.heatmaps.weight.mul_(HEAD_GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_argmax(self.heatmap_logits(x)).flatten(1)[:, : self.num_outputs]

    def heatmap_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, ceil(num_classes / 2), S/4, S/4)`` logits whose soft-argmax is the output."""
        feats = []
        x = self.stem(x)
        for level in self.levels:
            x = level(x)
            feats.append(x)
        top = self.laterals[-1](feats[-1])
        for lateral, f in zip(reversed(self.laterals[:-1]), reversed(feats[:-1]), strict=True):
            up = F.interpolate(top, scale_factor=2.0, mode="nearest")
            top = lateral(f) + up[:, :, : f.shape[2], : f.shape[3]]
        return self.heatmaps(self.dropout(self.smooth(top)))


@register("keypoint_resnet")
def keypoint_resnet(num_classes: int, in_channels: int, input_size: int, width: float, dropout: float) -> nn.Module:
    """Residual heatmap keypoint network (:data:`RESNET` layout) for faces of at least 16x16 pixels."""
    check_args("keypoint_resnet", num_classes, in_channels, input_size, width, dropout, min_size=16)
    return KeypointNet(num_classes, in_channels, RESNET, width, dropout)


@register("keypoint_tiny")
def keypoint_tiny(num_classes: int, in_channels: int, input_size: int, width: float, dropout: float) -> nn.Module:
    """Half of ``keypoint_resnet``'s width (:data:`TINY` layout), for the fastest CPU inference."""
    check_args("keypoint_tiny", num_classes, in_channels, input_size, width, dropout, min_size=16)
    return KeypointNet(num_classes, in_channels, TINY, width, dropout)

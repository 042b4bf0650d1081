"""Turning a loaded dataset split into training tensors, and the batch transform shared by
training and evaluation (uint8 -> [0, 1] float -> optional augmentation -> normalisation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.base import Split
from ..errors import DatasetError
from ..preprocess import prepare_uint8


@dataclass(frozen=True)
class SplitTensors:
    x: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    targets: torch.Tensor  # float32 (N, K): one-hot, or the split's soft targets

    def __len__(self) -> int:
        return int(self.x.shape[0])


def split_tensors(split: Split, num_classes: int, size: int, channels: int, soft: bool = False) -> SplitTensors:
    """Images at the model's size and channels (via the shared preprocessing) plus targets: the split's
    soft label distributions when ``soft`` (FER+ ``label_mode=soft``), one-hot hard labels otherwise."""
    if len(split) == 0:
        raise DatasetError(f"split {split.name!r} is empty")
    imgs = split.images
    if imgs.shape[1:3] == (size, size) and ((channels == 1 and imgs.ndim == 3) or (channels == 3 and imgs.ndim == 4)):
        x = imgs[:, None] if channels == 1 else imgs.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
    else:
        x = prepare_uint8(imgs, (size, size), channels)
    labels = torch.as_tensor(split.labels, dtype=torch.long)
    if soft and split.targets is not None:
        targets = torch.as_tensor(split.targets, dtype=torch.float32)
    else:
        targets = torch.nn.functional.one_hot(labels, num_classes).float()
    return SplitTensors(torch.from_numpy(x), labels, targets)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a uint8 (N, C, H, W) tensor, in [0, 1] units."""
    xf = x.float().div_(255.0)
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 5) for v in mean), tuple(round(float(v), 5) for v in std)


def normalize_batch(x_uint8_or_unit: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The same formula as :func:`emolens.preprocess.normalize`: ``(x / 255 - mean) / std``."""
    x = x_uint8_or_unit
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

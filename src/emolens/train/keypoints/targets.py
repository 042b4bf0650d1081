"""Keypoint targets: pixels <-> unit coordinates, a split as tensors, and the masked regression loss.

Models predict **unit coordinates**: ``u = (x + 0.5) / width`` and ``v = (y + 0.5) / height``, where
``(x, y)`` is the OpenCV pixel-centre position. So ``0`` is the left (top) edge of the input and
``1`` the right (bottom) edge, whatever the input size. The output row is ``u0, v0, u1, v1, ...``
in the order of the model's point names. The same formulas live, torch-free, in
:mod:`emolens.inference.landmarks`, which is what serving uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...data.keypoints import KeypointSplit
from ...errors import DatasetError

HEATMAP_SIGMA = 1.0
"""Width, in heatmap cells, of the Gaussian the heatmaps are drawn towards by :func:`heatmap_regulariser`."""
WING_W, WING_EPS = 4.0, 1.0
"""Wing loss (Feng et al., 2018) in pixels of the model input: logarithmic below ``WING_W`` pixels,
so small errors keep a strong gradient, and L1 beyond it."""


def to_unit(points: np.ndarray, size: int) -> np.ndarray:
    """Pixels of a ``size`` x ``size`` image -> unit coordinates (NaN stays NaN)."""
    return (np.asarray(points, dtype=np.float32) + 0.5) / float(size)


def to_pixels(unit: np.ndarray, size: int) -> np.ndarray:
    """Unit coordinates -> pixels of a ``size`` x ``size`` image."""
    return np.asarray(unit, dtype=np.float32) * float(size) - 0.5


@dataclass(frozen=True)
class KeypointTensors:
    """``x``: uint8 ``(N, C, S, S)``; ``points``: float32 ``(N, P, 2)`` unit coordinates, NaN = missing."""

    x: torch.Tensor
    points: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def size(self) -> int:
        return int(self.x.shape[-1])


def keypoint_tensors(split: KeypointSplit) -> KeypointTensors:
    """A split's images (already at the model's size) and points as training tensors."""
    if len(split) == 0:
        raise DatasetError(f"split {split.name!r} is empty")
    imgs = split.images
    if imgs.shape[1] != imgs.shape[2]:
        raise DatasetError(f"split {split.name!r}: keypoint images must be square, got {imgs.shape[1:3]}")
    x = imgs[:, None] if imgs.ndim == 3 else imgs.transpose(0, 3, 1, 2)
    unit = to_unit(split.points, imgs.shape[1])
    return KeypointTensors(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(unit))


def wing(d: torch.Tensor, w: float = WING_W, eps: float = WING_EPS) -> torch.Tensor:
    """Wing loss of non-negative distances ``d`` (continuous at ``d = w``)."""
    c = w - w * np.log1p(w / eps)
    return torch.where(d < w, w * torch.log1p(d / eps), d - c)


def keypoint_loss(pred: torch.Tensor, target: torch.Tensor, size: int) -> torch.Tensor:
    """Mean Wing loss over the known coordinates, measured in pixels of a ``size`` image.

    ``pred``: ``(N, 2P)`` model output; ``target``: ``(N, P, 2)`` unit coordinates with NaN for
    missing points (those coordinates add nothing and get no gradient).
    """
    t = target.reshape(pred.shape)
    known = torch.isfinite(t)
    d = (pred.float() - torch.where(known, t, torch.zeros_like(t))).abs() * size
    per = wing(d) * known
    return per.sum() / known.sum().clamp_min(1)


def gaussian_maps(target: torch.Tensor, h: int, w: int, sigma: float) -> torch.Tensor:
    """``(N, P, h, w)`` normalised Gaussians (``sigma`` in cells) at unit-coordinate ``target`` ``(N, P, 2)``;
    missing points (NaN) give uniform maps."""
    known = torch.isfinite(target).all(dim=2, keepdim=True)
    t = torch.where(known, target, torch.full_like(target, 0.5))
    cu = t[..., 0:1] * w - 0.5  # cell coordinates of the targets
    cv = t[..., 1:2] * h - 0.5
    xs = torch.arange(w, dtype=t.dtype, device=t.device).view(1, 1, w)
    ys = torch.arange(h, dtype=t.dtype, device=t.device).view(1, 1, h)
    gx = torch.exp(-((xs - cu) ** 2) / (2 * sigma**2))  # (N, P, w)
    gy = torch.exp(-((ys - cv) ** 2) / (2 * sigma**2))  # (N, P, h)
    g = gy.unsqueeze(3) * gx.unsqueeze(2)
    g = g / g.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    return torch.where(known.unsqueeze(3), g, torch.full_like(g, 1.0 / (h * w)))


def heatmap_regulariser(logits: torch.Tensor, target: torch.Tensor, sigma: float = HEATMAP_SIGMA) -> torch.Tensor:
    """Mean Jensen-Shannon divergence between each point's heatmap (softmax of ``logits``, ``(N, K, h, w)``,
    ``K >= P``) and a Gaussian at its target: keeps the maps single-peaked (Nibali et al., 2018, DSNT).
    Missing points are left out."""
    p = target.shape[1]
    h, w = logits.shape[2:]
    logp = torch.log_softmax(logits[:, :p].float().flatten(2), dim=2)
    q = gaussian_maps(target.float(), h, w, sigma).flatten(2)
    prob = logp.exp()
    m = ((prob + q) / 2).clamp_min(1e-12)
    js = 0.5 * (prob * (logp - m.log())).sum(2) + 0.5 * (q * (q.clamp_min(1e-12).log() - m.log())).sum(2)
    known = torch.isfinite(target).all(dim=2)
    return (js * known).sum() / known.sum().clamp_min(1)

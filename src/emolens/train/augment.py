"""Batched data augmentation on float image tensors ``(N, C, H, W)`` with values in [0, 1].

:class:`BatchAugment` applies, in this order, each only when its setting in
:class:`~emolens.config.AugmentConfig` is non-zero:

1. horizontal flip with probability ``hflip``;
2. one random affine per image combining rotation (``±rotate_deg``), zoom (``1 ± scale``) and
   translation (``±translate`` of the image side), resampled once, bilinear, reflection padding;
3. random crop after reflect-padding by ``crop_pad`` pixels (an integer shift, exact pixels);
4. brightness (``x * U(1 ± brightness)``) and contrast (around each image's mean, ``U(1 ± contrast)``);
5. random erasing with probability ``erase``: a rectangle of 2-25% of the area, aspect 0.3-3.3,
   filled with uniform noise.

:meth:`BatchAugment.mix` then does mixup or cutmix on the batch and its ``(N, K)`` target rows.

Every random number comes from the ``torch.Generator`` passed in (drawn on the generator's device,
then moved to the images' device), so the same seed gives the same output. Work is vectorised
over the batch; nothing loops over images. Outputs stay in [0, 1]; inputs are never modified.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..config import AugmentConfig
from ..errors import ConfigError, InvalidInput

ERASE_AREA = (0.02, 0.25)
ERASE_ASPECT = (0.3, 3.3)
_RANGE_TOL = 1e-4


def _check_config(cfg: AugmentConfig) -> None:
    """ConfigError naming the first setting out of range."""
    limits = {
        "hflip": (0.0, 1.0), "erase": (0.0, 1.0), "mix_prob": (0.0, 1.0),
        "rotate_deg": (0.0, 180.0), "scale": (0.0, 0.9), "translate": (0.0, 0.5),
        "brightness": (0.0, 1.0), "contrast": (0.0, 1.0),
        "mixup": (0.0, math.inf), "cutmix": (0.0, math.inf),
    }  # fmt: skip
    for name, (lo, hi) in limits.items():
        value = getattr(cfg, name)
        if not isinstance(value, int | float) or not lo <= value <= hi:
            raise ConfigError(f"augment.{name} must be in [{lo:g}, {hi:g}], got {value!r}")
    if isinstance(cfg.crop_pad, bool) or not isinstance(cfg.crop_pad, int) or cfg.crop_pad < 0:
        raise ConfigError(f"augment.crop_pad must be an integer >= 0, got {cfg.crop_pad!r}")


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        desc = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidInput(f"augment expects a float tensor (N, C, H, W), got {desc}")
    if x.numel() and (x.min() < -_RANGE_TOL or x.max() > 1 + _RANGE_TOL):
        raise InvalidInput(
            f"augment expects pixel values in [0, 1] (augment before normalising), "
            f"got min {x.min().item():.3f} max {x.max().item():.3f}"
        )


class BatchAugment:
    """Random augmentation of image batches, configured by an :class:`AugmentConfig`.

    ``aug(x, generator)`` returns a new augmented batch; ``aug.mix(x, targets, generator)`` returns
    the mixed batch and mixed targets. Raises ConfigError for settings out of range and
    InvalidInput for tensors of the wrong shape, dtype or value range.
    """

    def __init__(self, cfg: AugmentConfig):
        _check_config(cfg)
        self.cfg = cfg

    @property
    def mixes(self) -> bool:
        """Whether :meth:`mix` can change anything (mixup or cutmix on, and ``mix_prob > 0``)."""
        return (self.cfg.mixup > 0 or self.cfg.cutmix > 0) and self.cfg.mix_prob > 0

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augmented copy of ``x`` (N, C, H, W) in [0, 1]; same generator state -> same result."""
        _check_images(x)
        cfg = self.cfg
        if x.shape[0] == 0:
            return x.clone()
        out = x
        if cfg.hflip > 0:
            flip = _rand(x, generator, x.shape[0]) < cfg.hflip
            out = torch.where(flip.view(-1, 1, 1, 1), out.flip(-1), out)
        if cfg.rotate_deg > 0 or cfg.scale > 0 or cfg.translate > 0:
            out = self._affine(out, generator)
        if cfg.crop_pad > 0:
            out = self._crop(out, generator)
        if cfg.brightness > 0 or cfg.contrast > 0:
            out = self._color(out, generator)
        if cfg.erase > 0:
            out = self._erase(out, generator)
        return out.clone() if out is x else out

    def _affine(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        cfg = self.cfg
        angle = _uniform(x, g, n, -cfg.rotate_deg, cfg.rotate_deg) * (math.pi / 180)
        zoom = _uniform(x, g, n, 1 - cfg.scale, 1 + cfg.scale)
        shift = _uniform(x, g, 2 * n, -2 * cfg.translate, 2 * cfg.translate).view(n, 2)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # theta maps output to input coordinates in affine_grid's [-1, 1] units; the H/W factors keep
        # the rotation a true rotation in pixel space on non-square images.
        theta = torch.stack(
            [
                torch.stack([cos, -sin * (h / w), shift[:, 0]], dim=1),
                torch.stack([sin * (w / h), cos, shift[:, 1]], dim=1),
            ],
            dim=1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return out.clamp_(0, 1)

    def _crop(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        pad = min(self.cfg.crop_pad, h - 1, w - 1)  # reflect padding needs pad < side
        if pad <= 0:
            return x
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        offs = torch.randint(0, 2 * pad + 1, (2, n), generator=g, device=g.device).to(x.device)
        rows = offs[0, :, None] + torch.arange(h, device=x.device)  # (N, H)
        cols = offs[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indexing split by the channel slice puts the indexed dims first: (N, H, W, C).
        return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()

    def _color(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        b, c = self.cfg.brightness, self.cfg.contrast
        bright = _uniform(x, g, n, 1 - b, 1 + b).view(n, 1, 1, 1).to(x.dtype)
        contrast = _uniform(x, g, n, 1 - c, 1 + c).view(n, 1, 1, 1).to(x.dtype)
        out = x * bright
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        return ((out - mean) * contrast + mean).clamp_(0, 1)

    def _erase(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        on = _rand(x, g, n) < self.cfg.erase
        area = _uniform(x, g, n, *ERASE_AREA) * (h * w)
        log_lo, log_hi = math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])
        aspect = torch.exp(_uniform(x, g, n, log_lo, log_hi))
        eh = torch.sqrt(area * aspect).round().clamp(1, h)
        ew = torch.sqrt(area / aspect).round().clamp(1, w)
        top = (_rand(x, g, n) * (h - eh + 1)).floor()
        left = (_rand(x, g, n) * (w - ew + 1)).floor()
        ys = torch.arange(h, device=x.device, dtype=area.dtype)
        xs = torch.arange(w, device=x.device, dtype=area.dtype)
        in_rows = (ys >= top[:, None]) & (ys < (top + eh)[:, None])  # (N, H)
        in_cols = (xs >= left[:, None]) & (xs < (left + ew)[:, None])  # (N, W)
        mask = (in_rows[:, :, None] & in_cols[:, None, :] & on[:, None, None]).unsqueeze(1)
        noise = torch.rand(x.shape, generator=g, device=g.device, dtype=x.dtype).to(x.device)
        return torch.where(mask, noise, x)

    def mix(
        self, x: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup or cutmix of the batch with a random permutation of itself.

        ``targets`` are ``(N, K)`` probability rows (one-hot or soft). With probability ``mix_prob``
        (one draw per batch) the batch is mixed: by mixup if only ``mixup > 0``, by cutmix if only
        ``cutmix > 0``, by either with equal chance if both are on. lambda ~ Beta(alpha, alpha);
        for cutmix it is corrected to the exact pasted area. Mixed targets still sum to 1 per row.
        Returns new tensors (or copies of the inputs when the batch is not mixed).
        """
        _check_images(x)
        if not isinstance(targets, torch.Tensor) or targets.ndim != 2 or targets.shape[0] != x.shape[0]:
            shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise InvalidInput(f"mix expects targets (N, K) with N={x.shape[0]} rows, got {shape}")
        if not targets.is_floating_point():
            raise InvalidInput(f"mix expects float probability targets, got {targets.dtype}")
        cfg = self.cfg
        n = x.shape[0]
        if not self.mixes or n == 0 or _rand(x, generator, 1).item() >= cfg.mix_prob:
            return x.clone(), targets.clone()
        use_cutmix = cfg.cutmix > 0 and (cfg.mixup <= 0 or _rand(x, generator, 1).item() < 0.5)
        lam = _beta(generator, cfg.cutmix if use_cutmix else cfg.mixup)
        perm = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
        if use_cutmix:
            out, lam = _cutmix(x, perm, lam, generator)
        else:
            out = x * lam + x[perm] * (1 - lam)
        mixed = targets * lam + targets[perm] * (1 - lam)
        return out, mixed


def _rand(x: torch.Tensor, g: torch.Generator, n: int) -> torch.Tensor:
    """``n`` uniform [0, 1) floats (float32) from ``g``, on ``x``'s device."""
    return torch.rand(n, generator=g, device=g.device).to(x.device)


def _uniform(x: torch.Tensor, g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * _rand(x, g, n)


def _beta(g: torch.Generator, alpha: float) -> float:
    """One Beta(alpha, alpha) draw, reproducible from ``g`` (torch's Beta takes no generator)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _cutmix(
    x: torch.Tensor, perm: torch.Tensor, lam: float, g: torch.Generator
) -> tuple[torch.Tensor, float]:
    """Paste one box (area ~ 1 - lam, clipped at the border) from ``x[perm]``; lambda is area-corrected."""
    _, _, h, w = x.shape
    ratio = math.sqrt(1 - lam)
    bh, bw = round(h * ratio), round(w * ratio)
    cy, cx = (int(v) for v in torch.randint(0, 1 << 30, (2,), generator=g, device=g.device).tolist())
    cy, cx = cy % h, cx % w
    y0, y1 = max(cy - bh // 2, 0), min(cy + bh - bh // 2, h)
    x0, x1 = max(cx - bw // 2, 0), min(cx + bw - bw // 2, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    return out, 1 - (y1 - y0) * (x1 - x0) / (h * w)

"""Augmentation of face batches together with their keypoints.

:class:`KeypointAugment` applies one random affine per image, built from the
:class:`~emolens.config.AugmentConfig` settings, and moves the points with it:

1. horizontal flip with probability ``hflip``: ``x -> width - x``, and every point takes the place
   of its mirror partner (``left_eye_center`` <-> ``right_eye_center`` ...), because the subject's
   left eye of the mirrored face is the mirror image of its right eye;
2. rotation ``±rotate_deg``, zoom ``1 ± scale`` and shift ``±translate`` of the image side;

the image is resampled once (bilinear, border pixels repeated). Then brightness, contrast and
random erasing, which do not move points, run through the classification
:class:`~emolens.train.augment.BatchAugment`. ``crop_pad``, ``mixup`` and ``cutmix`` have no
meaning for keypoints and must be 0 (:class:`~emolens.errors.ConfigError` otherwise).
Every random number comes from the generator passed in, so a seed gives the same batch.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ...config import AugmentConfig
from ...errors import ConfigError, InvalidInput
from ..augment import BatchAugment, _check_config, _check_images, _rand, _uniform


def check_keypoint_augment(cfg: AugmentConfig) -> None:
    """ConfigError for a setting out of range or one keypoint training cannot use (see the module docstring)."""
    _check_config(cfg)
    for name in ("crop_pad", "mixup", "cutmix"):
        if getattr(cfg, name):
            raise ConfigError(f"augment.{name} must be 0 for keypoint training (got {getattr(cfg, name)}); "
                              "use augment.translate and augment.scale to move faces")


class KeypointAugment:
    """``aug(x, points, generator) -> (x', points')``.

    ``x``: float ``(N, C, S, S)`` in [0, 1]; ``points``: ``(N, P, 2)`` unit coordinates (see
    :mod:`.targets`; NaN stays NaN). ``flip``: for each point, the index of its mirror partner.
    """

    def __init__(self, cfg: AugmentConfig, flip: tuple[int, ...]) -> None:
        check_keypoint_augment(cfg)
        if sorted(flip) != list(range(len(flip))):
            raise ConfigError(f"flip must be a permutation of the point indices, got {flip}")
        self.cfg = cfg
        self.flip = torch.as_tensor(flip, dtype=torch.long)
        photometric = AugmentConfig(hflip=0, rotate_deg=0, scale=0, translate=0, crop_pad=0,
                                    brightness=cfg.brightness, contrast=cfg.contrast, erase=cfg.erase)
        self.photometric = BatchAugment(photometric)
        self._moves = cfg.hflip > 0 or cfg.rotate_deg > 0 or cfg.scale > 0 or cfg.translate > 0
        self._paints = any(dataclasses.astuple(photometric))

    def __call__(self, x: torch.Tensor, points: torch.Tensor, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x)
        n, _, h, w = x.shape
        if h != w:
            raise InvalidInput(f"keypoint augmentation needs square images, got {h}x{w}")
        if points.ndim != 3 or points.shape[0] != n or points.shape[2] != 2 or points.shape[1] != len(self.flip):
            raise InvalidInput(f"points must be (N={n}, P={len(self.flip)}, 2), got {tuple(points.shape)}")
        if n == 0:
            return x.clone(), points.clone()
        out, pts = x, points
        if self._moves:
            out, pts = self._affine(x, points, generator)
        if self._paints:
            out = self.photometric(out, generator)
        return (out.clone() if out is x else out), (pts.clone() if pts is points else pts)

    def _affine(self, x: torch.Tensor, points: torch.Tensor, g: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, n = self.cfg, x.shape[0]
        flip = _rand(x, g, n) < cfg.hflip
        angle = _uniform(x, g, n, -cfg.rotate_deg, cfg.rotate_deg) * (torch.pi / 180)
        zoom = _uniform(x, g, n, 1 - cfg.scale, 1 + cfg.scale)
        shift = _uniform(x, g, 2 * n, -2 * cfg.translate, 2 * cfg.translate).view(n, 1, 2)
        cos, sin = torch.cos(angle), torch.sin(angle)
        sign = torch.where(flip, -1.0, 1.0)
        # In affine_grid units (g = 2u - 1), output -> input is  g_in = R(angle) F g_out / zoom + shift,
        # with F = diag(sign, 1) the flip. Points go the other way: g_out = zoom F R(-angle) (g_in - shift).
        rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (N, 2, 2)
        fmat = torch.diag_embed(torch.stack([sign, torch.ones_like(sign)], 1))
        forward = rot @ fmat / zoom.view(n, 1, 1)
        theta = torch.cat([forward, shift.transpose(1, 2)], 2).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp_(0, 1)
        inverse = zoom.view(n, 1, 1) * (fmat @ rot.transpose(1, 2))  # (F R)^-1 = R^T F
        g_in = points.to(x.device) * 2 - 1
        g_out = (g_in - shift) @ inverse.transpose(1, 2)
        moved = (g_out + 1) / 2
        swapped = moved[:, self.flip.to(x.device)]
        pts = torch.where(flip.view(n, 1, 1), swapped, moved)
        return out, pts.to(points.dtype)

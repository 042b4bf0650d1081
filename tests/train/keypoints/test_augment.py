"""Augmentation moves the points with the pixels; the flip swaps left and right points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emolens.config import AugmentConfig
from emolens.data.keypoints import KAGGLE15, flip_permutation
from emolens.errors import ConfigError, InvalidInput
from emolens.train.keypoints.augment import KeypointAugment
from emolens.train.keypoints.targets import to_pixels

from .synthetic import FACE15, draw

SIZE = 64
FLIP = flip_permutation(KAGGLE15)


def geometric(**kw: float) -> AugmentConfig:
    base = {"hflip": 0.0, "rotate_deg": 0.0, "scale": 0.0, "translate": 0.0, "crop_pad": 0, "brightness": 0.0,
            "contrast": 0.0, "erase": 0.0}
    base.update(kw)
    return AugmentConfig(**base)  # type: ignore[arg-type]


def batch(n: int = 6, spread: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Blobs at the face's points, or (``spread``) on a 5x3 grid 11 px apart so they never overlap."""
    grid = np.stack(np.meshgrid(np.linspace(10, 54, 5), np.linspace(18, 46, 3)), -1).reshape(15, 2)
    pts = (grid if spread else FACE15 * (SIZE / 96))[None].repeat(n, 0).astype(np.float32)
    imgs = draw(pts, SIZE, np.random.default_rng(0), sigma=1.5)
    x = torch.from_numpy(imgs[:, None].astype(np.float32) / 255)
    return x, torch.from_numpy((pts + 0.5) / SIZE)


def blob_centre(img: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Intensity-weighted centre of the bright blob within 3 px of (x, y)."""
    i, j = round(y), round(x)
    win = img[i - 3:i + 4, j - 3:j + 4].astype(np.float64)
    win = np.clip(win - np.median(img), 0, None) ** 2
    yy, xx = np.mgrid[i - 3:i + 4, j - 3:j + 4]
    return float((win * xx).sum() / win.sum()), float((win * yy).sum() / win.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_points_follow_the_pixels(seed: int) -> None:
    aug = KeypointAugment(geometric(hflip=0.5, rotate_deg=30, scale=0.15, translate=0.08), FLIP)
    x, pts = batch(spread=True)
    out, moved = aug(x, pts, torch.Generator().manual_seed(seed))
    px = to_pixels(moved.numpy(), SIZE)
    img = out[:, 0].numpy()
    for k in range(len(img)):
        for (mx, my) in px[k]:
            if 4 <= mx < SIZE - 4 and 4 <= my < SIZE - 4:
                cx, cy = blob_centre(img[k], mx, my)
                assert abs(cx - mx) < 0.3 and abs(cy - my) < 0.3


def test_flip_mirrors_and_swaps_names() -> None:
    aug = KeypointAugment(geometric(hflip=1.0), FLIP)
    x, pts = batch(2)
    out, moved = aug(x, pts, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x.flip(-1), atol=1e-5, rtol=0)
    m = moved.numpy()
    le, re_ = KAGGLE15.index("left_eye_center"), KAGGLE15.index("right_eye_center")
    assert (m[:, le, 0] > m[:, re_, 0]).all()  # the subject's left eye is still on the image's right
    np.testing.assert_allclose(m[:, le, 0], 1 - pts.numpy()[:, re_, 0], atol=1e-6)
    np.testing.assert_allclose(m[:, le, 1], pts.numpy()[:, re_, 1], atol=1e-6)


def test_reproducible_missing_points_and_inputs_untouched() -> None:
    aug = KeypointAugment(geometric(hflip=0.5, rotate_deg=20, scale=0.1, translate=0.05, brightness=0.3,
                                    contrast=0.3, erase=0.5), FLIP)
    x, pts = batch()
    pts[0, 3] = float("nan")
    x0, p0 = x.clone(), pts.clone()
    a = aug(x, pts, torch.Generator().manual_seed(7))
    b = aug(x, pts, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1].nan_to_num(-1), b[1].nan_to_num(-1))
    assert torch.equal(x, x0) and torch.equal(pts.nan_to_num(-1), p0.nan_to_num(-1))
    assert torch.isnan(a[1][0]).any() and float(a[0].min()) >= 0 and float(a[0].max()) <= 1


def test_no_augmentation_is_identity() -> None:
    aug = KeypointAugment(geometric(), FLIP)
    x, pts = batch(2)
    out, moved = aug(x, pts, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and torch.equal(moved, pts) and out is not x


def test_refuses_settings_and_tensors_it_cannot_use() -> None:
    for bad in ({"crop_pad": 4}, {"mixup": 0.2}, {"cutmix": 1.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            KeypointAugment(geometric(**bad), FLIP)
    with pytest.raises(ConfigError, match="rotate_deg"):
        KeypointAugment(geometric(rotate_deg=500), FLIP)
    with pytest.raises(ConfigError, match="permutation"):
        KeypointAugment(geometric(), (0, 0))
    aug = KeypointAugment(geometric(hflip=0.5), FLIP)
    x, pts = batch(2)
    with pytest.raises(InvalidInput, match="points"):
        aug(x, pts[:, :3], torch.Generator())
    with pytest.raises(InvalidInput, match="square"):
        aug(x[:, :, :32], pts, torch.Generator())
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        aug(x * 255, pts, torch.Generator())

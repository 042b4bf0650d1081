"""Batched augmentation: shapes and range, determinism, each transform's effect, mixup/cutmix, bad input."""

from __future__ import annotations

import csv
import gzip
import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from emolens.config import AugmentConfig
from emolens.errors import ConfigError, InvalidInput
from emolens.train.augment import BatchAugment

OFF = AugmentConfig(
    hflip=0.0, rotate_deg=0.0, scale=0.0, translate=0.0, crop_pad=0, brightness=0.0, contrast=0.0,
    erase=0.0, mixup=0.0, cutmix=0.0, mix_prob=0.0,
)  # fmt: skip


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 8, c: int = 1, h: int = 48, w: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(seed + 100))


@pytest.mark.parametrize(("c", "h", "w"), [(1, 48, 48), (3, 48, 48), (1, 40, 56)])
def test_default_config_keeps_shape_dtype_and_range(c: int, h: int, w: int) -> None:
    x = images(16, c, h, w)
    before = x.clone()
    out = BatchAugment(AugmentConfig())(x, gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)
    assert torch.equal(x, before), "the input must not be modified"


def test_same_seed_same_output_other_seed_other_output() -> None:
    aug = BatchAugment(replace(AugmentConfig(), erase=0.5))
    x = images()
    assert torch.equal(aug(x, gen(3)), aug(x, gen(3)))
    assert not torch.equal(aug(x, gen(3)), aug(x, gen(4)))


def test_everything_off_is_identity() -> None:
    x = images()
    out = BatchAugment(OFF)(x, gen())
    assert torch.equal(out, x) and out is not x
    xm, tm = BatchAugment(OFF).mix(x, torch.eye(8), gen())
    assert torch.equal(xm, x) and torch.equal(tm, torch.eye(8))


def test_hflip_always_equals_flip() -> None:
    x = images(c=3)
    assert torch.equal(BatchAugment(replace(OFF, hflip=1.0))(x, gen()), x.flip(-1))


def test_hflip_half_flips_some_images_only() -> None:
    x = images(64)
    out = BatchAugment(replace(OFF, hflip=0.5))(x, gen())
    flipped = [torch.equal(o, f) for o, f in zip(out, x.flip(-1), strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(a != b for a, b in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def test_rotation_and_zoom_turn_about_the_centre() -> None:
    x = images(8, 1, 49, 49)  # odd side: one pixel sits exactly on the centre
    out = BatchAugment(replace(OFF, rotate_deg=30.0, scale=0.2))(x, gen())
    torch.testing.assert_close(out[:, :, 24, 24], x[:, :, 24, 24], atol=1e-5, rtol=0)
    assert not torch.allclose(out, x, atol=1e-3)


def test_translation_moves_content() -> None:
    x = torch.zeros(4, 1, 48, 48)
    x[:, :, 20:28, 20:28] = 1.0
    out = BatchAugment(replace(OFF, translate=0.2))(x, gen())
    centre = torch.tensor([23.5, 23.5])
    for img in out[:, 0]:
        ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
        mass = img.sum()
        com = torch.stack([(img * ys).sum() / mass, (img * xs).sum() / mass])
        assert (com - centre).abs().max() <= 0.2 * 48 + 1
    assert not torch.allclose(out, x, atol=1e-3)


def test_crop_is_an_integer_shift_of_the_reflect_padded_image() -> None:
    x = images(6, 3)
    out = BatchAugment(replace(OFF, crop_pad=4))(x, gen())
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(len(x)):
        assert any(
            torch.equal(out[i], padded[i, :, dy : dy + 48, dx : dx + 48])
            for dy, dx in itertools.product(range(9), range(9))
        ), f"image {i} is not a crop of the padded input"


def test_brightness_contrast_is_affine_per_image() -> None:
    x = 0.4 + 0.2 * images(8)  # mid-range: no clipping at 1 ± 0.2
    out = BatchAugment(replace(OFF, brightness=0.2, contrast=0.2))(x, gen())
    dx = x - x.mean(dim=(1, 2, 3), keepdim=True)
    do = out - out.mean(dim=(1, 2, 3), keepdim=True)
    gain = (do * dx).sum(dim=(1, 2, 3)) / (dx * dx).sum(dim=(1, 2, 3))
    torch.testing.assert_close(do, gain.view(-1, 1, 1, 1) * dx, atol=1e-5, rtol=0)
    assert ((gain > 0.6) & (gain < 1.45)).all() and not torch.allclose(gain, torch.ones(8))


def test_erase_changes_one_rectangle_per_image() -> None:
    x = images(16)
    out = BatchAugment(replace(OFF, erase=1.0))(x, gen())
    for i, changed in enumerate((out != x).any(dim=1)):
        ys, xs = torch.nonzero(changed, as_tuple=True)
        assert len(ys) > 0, f"image {i} not erased"
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert len(ys) == box, "erased pixels form a rectangle"
        assert len(ys) <= 0.3 * 48 * 48
    assert out.min() >= 0 and out.max() <= 1


def _constant_batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is the constant (i + 1) / 10, class i: mixing can be read back from pixels and targets."""
    values = (torch.arange(n, dtype=torch.float32) + 1) / 10
    return values.view(n, 1, 1, 1).expand(n, 1, 16, 16).clone(), torch.eye(n)


def test_mixup_targets_sum_to_one_and_match_pixels() -> None:
    x, t = _constant_batch(6)
    aug = BatchAugment(replace(OFF, mixup=1.0, mix_prob=1.0))
    xm, tm = aug.mix(x, t, gen())
    torch.testing.assert_close(tm.sum(1), torch.ones(6))
    lam = tm.diagonal()
    assert torch.allclose(lam[lam < 1], lam[lam < 1][0]), "one lambda per batch"
    expected = tm @ x[:, 0, 0, 0]  # each mixed image is the target-weighted mix of the source values
    torch.testing.assert_close(xm[:, 0], expected.view(6, 1, 1).expand(6, 16, 16))


def test_cutmix_lambda_is_the_kept_area() -> None:
    x, t = _constant_batch(6)
    aug = BatchAugment(replace(OFF, cutmix=1.0, mix_prob=1.0))
    mixed_any = False
    for seed in range(10):
        xm, tm = aug.mix(x, t, gen(seed))
        torch.testing.assert_close(tm.sum(1), torch.ones(6))
        for i in range(6):
            kept = (xm[i] == x[i]).float().mean()
            torch.testing.assert_close(tm[i, i], kept if tm[i, i] < 1 else torch.tensor(1.0))
            mixed_any |= bool(tm[i, i] < 1)
    assert mixed_any


def test_mix_keeps_soft_targets_normalised_and_respects_mix_prob() -> None:
    x = images(8)
    soft = torch.softmax(torch.randn(8, 7, generator=gen()), dim=1)
    xm, tm = BatchAugment(replace(OFF, mixup=0.4, cutmix=1.0, mix_prob=1.0)).mix(x, soft, gen())
    torch.testing.assert_close(tm.sum(1), torch.ones(8))
    assert xm.min() >= 0 and xm.max() <= 1
    xn, tn = BatchAugment(replace(OFF, mixup=0.4, mix_prob=0.0)).mix(x, soft, gen())
    assert torch.equal(xn, x) and torch.equal(tn, soft)


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(48, 48),
        torch.randint(0, 255, (2, 1, 48, 48), dtype=torch.uint8),
        torch.randn(2, 1, 48, 48) * 3,  # already normalised
    ],
)
def test_bad_images_raise_invalid_input(bad: torch.Tensor) -> None:
    with pytest.raises(InvalidInput, match="augment expects"):
        BatchAugment(AugmentConfig())(bad, gen())


def test_bad_targets_raise_invalid_input() -> None:
    aug = BatchAugment(replace(OFF, mixup=1.0, mix_prob=1.0))
    with pytest.raises(InvalidInput, match="targets"):
        aug.mix(images(4), torch.eye(3), gen())
    with pytest.raises(InvalidInput, match="float"):
        aug.mix(images(4), torch.eye(4, dtype=torch.long), gen())


@pytest.mark.parametrize(
    ("field", "value"),
    [("hflip", 1.5), ("erase", -0.1), ("rotate_deg", 400.0), ("crop_pad", -1), ("mixup", -1.0)],
)
def test_out_of_range_settings_raise_config_error(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"augment.{field}"):
        BatchAugment(replace(AugmentConfig(), **{field: value}))


def test_empty_batch() -> None:
    assert BatchAugment(AugmentConfig())(torch.zeros(0, 1, 48, 48), gen()).shape == (0, 1, 48, 48)


@pytest.mark.shared
def test_real_faces_stay_faces(shared_data: Path) -> None:
    path = shared_data / "fer2013" / "fer2013.csv.gz"
    with gzip.open(path, "rt", newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), 64))
    x = torch.tensor([[float(v) for v in r["pixels"].split()] for r in rows]).view(64, 1, 48, 48) / 255
    out = BatchAugment(AugmentConfig())(x, gen())
    assert out.min() >= 0 and out.max() <= 1
    # Geometry and colour change, but a face stays close to itself (mean brightness, coarse layout).
    assert (out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))).abs().max() < 0.25
    coarse_in, coarse_out = F.avg_pool2d(x, 16).flatten(1), F.avg_pool2d(out, 16).flatten(1)
    same = F.cosine_similarity(coarse_in - coarse_in.mean(1, keepdim=True),
                               coarse_out - coarse_out.mean(1, keepdim=True))
    other = F.cosine_similarity(coarse_in - coarse_in.mean(1, keepdim=True),
                                (coarse_out - coarse_out.mean(1, keepdim=True)).roll(1, 0))
    assert same.mean() > other.mean() + 0.2

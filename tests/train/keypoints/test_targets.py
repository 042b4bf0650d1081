"""Unit coordinates and the masked Wing loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emolens.errors import DatasetError
from emolens.train.keypoints.targets import (
    gaussian_maps,
    heatmap_regulariser,
    keypoint_loss,
    keypoint_tensors,
    to_pixels,
    to_unit,
    wing,
)

from .synthetic import make_keypoint_dataset


def test_unit_coordinates_round_trip_and_edges() -> None:
    px = np.array([[-0.5, -0.5], [31.5, 31.5], [15.5, 0.0]], np.float32)
    unit = to_unit(px, 32)
    np.testing.assert_allclose(unit[0], [0, 0])  # the left/top edge of the first pixel
    np.testing.assert_allclose(unit[1], [1, 1])  # the right/bottom edge of the last pixel
    np.testing.assert_allclose(to_pixels(unit, 32), px, atol=1e-6)
    assert np.isnan(to_unit(np.array([[np.nan, 1.0]]), 32)[0, 0])


def test_keypoint_tensors() -> None:
    ds = make_keypoint_dataset(n_train=8, size=32)
    t = keypoint_tensors(ds.split("train"))
    assert t.x.shape == (8, 1, 32, 32) and t.x.dtype == torch.uint8 and t.size == 32
    assert t.points.shape == (8, 15, 2) and float(t.points.min()) > 0 and float(t.points.max()) < 1
    empty = ds.split("train").subset(np.array([], dtype=np.int64))
    with pytest.raises(DatasetError, match="empty"):
        keypoint_tensors(empty)


def test_wing_is_continuous_and_log_then_linear() -> None:
    d = torch.tensor([0.0, 1.0, 3.999, 4.0, 4.001, 10.0])
    w = wing(d)
    assert w[0] == 0 and abs(float(w[3] - w[2])) < 1e-2 and abs(float(w[4] - w[3])) < 1e-2
    assert float(w[5] - w[4]) == pytest.approx(10.0 - 4.001, rel=1e-4)  # slope 1 beyond w
    assert float(w[1]) > 1.0  # steeper than L1 near zero


def test_loss_ignores_missing_points() -> None:
    target = torch.full((2, 3, 2), 0.5)
    pred = torch.full((2, 6), 0.5)
    assert float(keypoint_loss(pred, target, 64)) == 0.0
    target[0, 1] = float("nan")
    pred = pred.clone().requires_grad_(True)
    bumped = pred.detach().clone()
    bumped[0, 2:4] = 0.9  # the missing point's coordinates: no loss
    assert float(keypoint_loss(bumped, target, 64)) == 0.0
    loss = keypoint_loss(pred + 0.1, target, 64)
    loss.backward()
    assert pred.grad is not None and float(pred.grad[0, 2:4].abs().sum()) == 0.0
    assert float(pred.grad[1].abs().sum()) > 0


def test_gaussian_maps_peak_at_the_targets() -> None:
    target = torch.tensor([[[2.5 / 8, 5.5 / 8], [float("nan"), 0.5]]])  # cell (row 5, column 2); missing
    g = gaussian_maps(target, 8, 8, sigma=1.0)
    assert g.shape == (1, 2, 8, 8) and torch.allclose(g.sum(dim=(2, 3)), torch.ones(1, 2))
    assert divmod(int(g[0, 0].argmax()), 8) == (5, 2)
    assert torch.allclose(g[0, 1], torch.full((8, 8), 1 / 64))  # missing: uniform


def test_heatmap_regulariser_pulls_maps_to_a_gaussian_on_the_target() -> None:
    target = torch.tensor([[[2.5 / 8, 5.5 / 8]]])
    on_target = gaussian_maps(target, 8, 8, 1.0).log()
    elsewhere = gaussian_maps(torch.tensor([[[6.5 / 8, 1.5 / 8]]]), 8, 8, 1.0).log()
    good, bad = heatmap_regulariser(on_target, target), heatmap_regulariser(elsewhere, target)
    flat = heatmap_regulariser(torch.zeros(1, 1, 8, 8), target)
    assert float(good) == pytest.approx(0.0, abs=1e-6)
    assert float(good) < float(flat) < float(bad) <= np.log(2) + 1e-6
    # extra maps (odd outputs) and missing points are ignored
    two = torch.cat([on_target, elsewhere], dim=1)
    assert float(heatmap_regulariser(two, target)) == pytest.approx(float(good), abs=1e-6)
    missing = torch.tensor([[[2.5 / 8, 5.5 / 8], [float("nan"), float("nan")]]])
    assert float(heatmap_regulariser(two, missing)) == pytest.approx(float(good), abs=1e-6)

"""The keypoint networks: soft-argmax, output layout, a sensible start, size, any input size."""

from __future__ import annotations

import pytest
import torch

from emolens.errors import ConfigError
from emolens.train.archs import count_parameters, create_model, list_models
from emolens.train.archs.keypoint_resnet import soft_argmax

NAMES = ("keypoint_resnet", "keypoint_tiny")


def test_registered() -> None:
    assert set(NAMES) <= set(list_models())


def test_soft_argmax_finds_peaks_and_interpolates() -> None:
    logits = torch.full((1, 2, 16, 8), -50.0)
    logits[0, 0, 3, 5] = 50.0  # a sharp peak at row 3, column 5
    logits[0, 1, 10, 2] = logits[0, 1, 10, 3] = 50.0  # two equal cells: the point lies between them
    out = soft_argmax(logits)
    torch.testing.assert_close(out[0, 0], torch.tensor([5.5 / 8, 3.5 / 16]))
    torch.testing.assert_close(out[0, 1], torch.tensor([3.0 / 8, 10.5 / 16]))
    flat = soft_argmax(torch.zeros(1, 1, 5, 5))
    torch.testing.assert_close(flat[0, 0], torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [16, 33, 48, 64, 96])
def test_two_numbers_per_point_starting_mid_image(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, 30, in_channels=1, input_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(4, 1, size, size))
    assert out.shape == (4, 30) and torch.isfinite(out).all()
    assert (out > 0).all() and (out < 1).all()  # soft-argmax stays inside the frame
    assert (out - 0.5).abs().max() < 0.1  # nearly flat heatmaps at the start: points near the middle


@pytest.mark.parametrize("name", NAMES)
def test_odd_output_count_and_rgb(name: str) -> None:
    model = create_model(name, 7, in_channels=3, input_size=48).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 48, 48)).shape == (2, 7)


def test_sizes_fit_the_targets() -> None:
    big = count_parameters(create_model("keypoint_resnet", 30, input_size=64))
    tiny = count_parameters(create_model("keypoint_tiny", 30, input_size=64))
    assert tiny < big / 3
    assert big * 4 < 2_950_000  # float32 weights under the 3 MB target, with room for the graph


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="input_size"):
        create_model("keypoint_resnet", 30, input_size=8)
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("keypoint_tiny", 1)

import numpy as np
import pytest

from emolens.errors import InvalidInput
from emolens.preprocess import normalize, prepare_uint8, softmax, to_channels, to_model_input


def test_channels_conversions(rng):
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    assert to_channels(rgb, 1).shape == (10, 12)
    rgba = np.dstack([rgb, np.full((10, 12), 255, np.uint8)])
    assert np.array_equal(to_channels(rgba, 3), rgb)
    gray = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    assert to_channels(gray, 3).shape == (10, 12, 3)
    with pytest.raises(InvalidInput, match="uint8"):
        to_channels(gray.astype(np.float32), 1)


def test_prepare_and_normalize(rng):
    crops = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (30, 48, 100)]
    u8 = prepare_uint8(crops, (48, 48), 1)
    assert u8.shape == (3, 1, 48, 48) and u8.dtype == np.uint8
    x = to_model_input(crops, (48, 48), 1, (0.5,), (0.25,))
    assert x.dtype == np.float32
    assert np.allclose(x, (u8 / 255.0 - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(InvalidInput):
        normalize(u8, (0.5, 0.5, 0.5), (1, 1, 1))


def test_softmax_rows_sum_to_one(rng):
    p = softmax(rng.normal(size=(5, 7)).astype(np.float32) * 50)
    assert np.allclose(p.sum(1), 1, atol=1e-5)

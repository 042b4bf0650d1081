"""Temperature scaling stored in a model's metadata and applied by the serving engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emolens.cli import main
from emolens.errors import ModelFormatError
from emolens.evaluation.calibrate import calibrate_onnx, raw_logits
from emolens.evaluation.metrics import fit_temperature
from emolens.inference.onnx_model import EmotionModel, read_model_meta
from emolens.preprocess import softmax
from tests.inference.modelfactory import make_model, tiny_meta


def _faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """16x16 faces brighter on the left (label 0) or on the right (label 1), 30% of labels flipped; the
    tiny model's logits are small, so it is under-confident there and wants a temperature below 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    img = np.full((n, 16, 16), 100, np.uint8)
    img[y == 0, :, :8] = 200
    img[y == 1, :, 8:] = 200
    noisy = rng.random(n) < 0.3
    return img, np.where(noisy, 1 - y, y)


def test_calibrate_stores_the_fitted_temperature_and_the_engine_applies_it(tmp_path: Path) -> None:
    src = make_model(tmp_path / "m.onnx")
    images, y = _faces(400)
    c = calibrate_onnx(src, images, y, "val", tmp_path / "cal.onnx")
    logits = raw_logits(src, images)
    assert c.temperature == pytest.approx(fit_temperature(logits, y, kind="logits"))
    assert c.temperature < 1.0 and c.ece_after < c.ece_before and c.n == 400
    meta = read_model_meta(c.path)
    assert meta.extra["temperature"] == pytest.approx(c.temperature, abs=1e-6)
    assert meta.extra["temperature_fitted_on"] == {"split": "val", "n": 400}
    served, plain = EmotionModel(c.path), EmotionModel(src)
    assert served.temperature == pytest.approx(c.temperature, abs=1e-6) and plain.temperature == 1.0
    p, q = served.predict(list(images[:50])), plain.predict(list(images[:50]))
    np.testing.assert_allclose(p, softmax(logits[:50] / served.temperature, axis=1), atol=1e-5)
    assert (p.argmax(1) == q.argmax(1)).all() and not np.allclose(p, q)  # same labels, softer probabilities
    np.testing.assert_allclose(raw_logits(c.path, images[:5]), logits[:5], atol=1e-5)  # raw ignores T


@pytest.mark.parametrize("value", [-1.0, 0.0, "hot", True])
def test_a_bad_stored_temperature_is_a_model_format_error(tmp_path: Path, value: object) -> None:
    path = make_model(tmp_path / "bad.onnx", tiny_meta(temperature=value))
    with pytest.raises(ModelFormatError, match="temperature"):
        EmotionModel(path)


def test_a_temperature_needs_logits(tmp_path: Path) -> None:
    path = make_model(tmp_path / "p.onnx", tiny_meta(output="probs", temperature=2.0), softmax_in_graph=True)
    with pytest.raises(ModelFormatError, match="logits"):
        EmotionModel(path)


def test_cli_refuses_to_fit_on_the_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_model(tmp_path / "m.onnx")
    assert main(["calibrate", str(path), "--data", str(tmp_path), "--split", "test"]) == 2
    assert "validation split" in capsys.readouterr().err

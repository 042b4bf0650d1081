"""Temperature scaling of a shipped ONNX emotion model: fit ``T`` on a validation split, store it.

The serving engine (:class:`~emolens.inference.onnx_model.EmotionModel`) turns logits into
probabilities with ``softmax(logits / T)`` when the model's metadata carries ``extra["temperature"]``,
so a calibrated file makes every consumer (CLI, API, video, campaigns) report calibrated
probabilities without any code change. Accuracy is unchanged: dividing by ``T > 0`` keeps the order.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError
from ..modelmeta import ModelMeta
from .metrics import apply_temperature, expected_calibration_error, fit_temperature


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate_onnx` fitted and wrote: ``temperature`` fitted on ``n`` rows of ``split``,
    with the ECE of that split before and after."""

    path: Path
    temperature: float
    split: str
    n: int
    ece_before: float
    ece_after: float


def raw_logits(model_path: Path, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's logits on ``images`` (any stored temperature ignored)."""
    from ..inference.onnx_model import EmotionModel
    from ..preprocess import to_model_input

    model = EmotionModel(model_path)
    if model.meta.output != "logits":
        raise ModelFormatError(f"{model_path}: temperature scaling needs a model whose output is logits")
    meta = model.meta
    out = [model.raw_outputs(to_model_input(images[i:i + batch_size], meta.input_size, meta.channels,
                                              meta.mean, meta.std))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, meta.num_classes))


def with_temperature(meta: ModelMeta, temperature: float, split: str, n: int) -> ModelMeta:
    """``meta`` carrying ``temperature`` (and where it was fitted) in ``extra``."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    extra = {**meta.extra, "temperature": round(float(temperature), 6),
             "temperature_fitted_on": {"split": split, "n": int(n)}}
    return dataclasses.replace(meta, extra=extra)


def calibrate_onnx(model_path: str | Path, images: np.ndarray, labels: np.ndarray, split: str,
                   out: str | Path | None = None) -> Calibration:
    """Fit ``T`` on ``(images, labels)`` (a validation split, never the reported test split) and write
    the model with it in its metadata to ``out`` (default: in place)."""
    import onnx

    src, dst = Path(model_path), Path(out) if out is not None else Path(model_path)
    logits = raw_logits(src, images)
    y = np.asarray(labels)
    y = (y.argmax(axis=1) if y.ndim == 2 else y).astype(np.int64)  # soft targets: their majority label
    t = fit_temperature(logits, y, kind="logits")
    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    meta = with_temperature(ModelMeta.from_props(props, str(src)), t, split, len(y))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta.to_props())
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return Calibration(dst, t, split, len(y), expected_calibration_error(y, apply_temperature(logits, 1.0, "logits")),
                       expected_calibration_error(y, apply_temperature(logits, t, "logits")))

"""Predictors that turn face crops into class probabilities, for ONNX models and training checkpoints.

Both read the model's :class:`~emolens.modelmeta.ModelMeta` (labels, input size, channels, mean/std)
and preprocess with :func:`emolens.preprocess.to_model_input`, the function serving uses.
:class:`OnnxPredictor` wraps the serving engine's ONNX model (no torch), so an evaluation scores
exactly what the engine runs; :class:`TorchPredictor` imports torch when it is built.
:func:`load_predictor` picks one from the file itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInput, ModelFormatError
from ..modelmeta import ModelMeta
from ..preprocess import softmax, to_model_input

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"

Images = np.ndarray | Sequence[np.ndarray]


@runtime_checkable
class Predictor(Protocol):
    """Anything that maps uint8 face crops ``(N, H, W[, 3])`` to probabilities ``(N, K)``.

    Columns follow ``meta.labels``; images of any size and colour are converted to the model's input.
    """

    meta: ModelMeta
    source: str

    def predict(self, images: Images) -> np.ndarray: ...


def _model_input(images: Images, meta: ModelMeta) -> np.ndarray:
    return to_model_input(images, meta.input_size, meta.channels, meta.mean, meta.std)


class OnnxPredictor:
    """An emolens ONNX model, run by the serving engine's :class:`~emolens.inference.onnx_model.EmotionModel`
    (ONNX Runtime; CPU unless ``providers`` says otherwise), so evaluation scores what serving runs.

    ``model`` is a path or the serialized model bytes (``source`` then names it in messages).
    Raises ModelFormatError when the file is missing, is not ONNX, lacks emolens metadata or its
    graph disagrees with the metadata.
    """

    def __init__(self, model: str | Path | bytes, providers: Sequence[str] | None = None, threads: int = 0,
                 source: str | None = None):
        from ..inference.onnx_model import EmotionModel

        if isinstance(model, bytes):
            self.source = source or "<in-memory ONNX model>"
            with tempfile.TemporaryDirectory(prefix="emolens-onnx-") as tmp:
                path = Path(tmp) / "model.onnx"
                path.write_bytes(model)
                self.model = EmotionModel(path, threads=threads, providers=providers)
        else:
            self.source = source or str(model)
            self.model = EmotionModel(model, threads=threads, providers=providers)
        self.meta = self.model.meta

    def predict(self, images: Images) -> np.ndarray:
        """Probabilities ``(N, K)`` in ``meta.labels`` order."""
        if len(images) == 0:
            return np.zeros((0, self.meta.num_classes), dtype=np.float32)
        return self.model.predict(images, batch_size=len(images)).astype(np.float32)  # type: ignore[arg-type]


class TorchPredictor:
    """A training checkpoint (``.pt`` from :func:`emolens.train.checkpoint.save_checkpoint`) on CPU or CUDA.

    Raises CheckpointError for a missing or corrupt checkpoint, ModelFormatError when torch is absent.
    """

    def __init__(self, path: str | Path, device: str = "cpu"):
        try:
            import torch

            from ..train.checkpoint import load_checkpoint
        except ImportError as e:
            raise ModelFormatError(f"{path} is a PyTorch checkpoint; reading it needs the 'train' extra "
                                   f"(pip install 'emolens[train]'): {e}") from e
        self.source = str(path)
        self.checkpoint = load_checkpoint(path)
        self.meta = self.checkpoint.meta
        self.device = torch.device(device)
        self.model = self.checkpoint.build_model().to(self.device)
        self.num_params = sum(p.numel() for p in self.model.parameters())

    def logits(self, images: Images) -> np.ndarray:
        """Raw model outputs ``(N, K)`` (logits unless ``meta.output == "probs"``)."""
        import torch

        x = torch.from_numpy(_model_input(images, self.meta)).to(self.device)
        with torch.inference_mode():
            return self.model(x).float().cpu().numpy()

    def predict(self, images: Images) -> np.ndarray:
        """Probabilities ``(N, K)`` in ``meta.labels`` order."""
        if len(images) == 0:
            return np.zeros((0, self.meta.num_classes), dtype=np.float32)
        out = self.logits(images)
        return softmax(out, axis=1) if self.meta.output == "logits" else out


def model_format(path: str | Path) -> str:
    """``"checkpoint"`` or ``"onnx"`` for a model file, judged by its first bytes, then its extension.

    A zip or pickle file (what ``torch.save`` writes) or a ``.pt/.pth/.ckpt`` name is a checkpoint;
    anything else is tried as ONNX. Raises ModelFormatError when the file does not exist or is empty.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"model file not found: {p}")
    with open(p, "rb") as f:
        head = f.read(8)
    if not head:
        raise ModelFormatError(f"{p} is empty, not a model")
    if head.startswith((_ZIP_MAGIC, _PICKLE_PROTO)) or p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return "checkpoint"
    return "onnx"


def load_predictor(path: str | Path, device: str = "cpu", threads: int = 0) -> Predictor:
    """A :class:`TorchPredictor` for a checkpoint or an :class:`OnnxPredictor` for an ONNX file.

    A file that is neither raises ModelFormatError naming it; a corrupt checkpoint raises CheckpointError.
    """
    p = Path(path)
    if model_format(p) == "checkpoint":
        return TorchPredictor(p, device=device)
    try:
        return OnnxPredictor(p, threads=threads)
    except ModelFormatError as e:
        if p.suffix.lower() == ".onnx":
            raise
        raise ModelFormatError(f"{p} is neither an emolens checkpoint (.pt) nor an emolens ONNX model "
                               f"({e})") from e


def hflip(images: Images) -> Images:
    """Mirror images left-right (``(N, H, W[, C])`` array or a list of ``(H, W[, C])`` arrays)."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise InvalidInput(f"expected images (N, H, W[, C]), got shape {images.shape}")
        return np.ascontiguousarray(images[:, :, ::-1])
    return [np.ascontiguousarray(np.asarray(img)[:, ::-1]) for img in images]


def predict_batched(predictor: Predictor, images: Images, batch_size: int = 256,
                    flip: bool = False) -> np.ndarray:
    """Probabilities for all ``images`` in batches of ``batch_size`` (each mirrored first when ``flip``)."""
    if batch_size < 1:
        raise InvalidInput(f"batch size must be at least 1, got {batch_size}")
    out = [np.zeros((0, predictor.meta.num_classes), dtype=np.float32)]
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size]
        out.append(predictor.predict(hflip(batch) if flip else batch))
    return np.concatenate(out).astype(np.float32, copy=False)


def predict_with_tta(predictor: Predictor, images: Images,
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(plain, tta)`` probabilities: plain predictions, and their mean with the mirrored images'."""
    plain = predict_batched(predictor, images, batch_size)
    mirrored = predict_batched(predictor, images, batch_size, flip=True)
    return plain, (plain + mirrored) / 2


def describe(predictor: Predictor) -> dict[str, Any]:
    """A small JSON-ready description of a predictor's model (for reports and metrics.json)."""
    m = predictor.meta
    d: dict[str, Any] = {"source": predictor.source, "architecture": m.architecture, "dataset": m.dataset,
                         "labels": list(m.labels), "input_size": list(m.input_size), "channels": m.channels,
                         "format": "checkpoint" if isinstance(predictor, TorchPredictor) else "onnx"}
    params = getattr(predictor, "num_params", None)
    if params is not None:
        d["params"] = int(params)
    return d

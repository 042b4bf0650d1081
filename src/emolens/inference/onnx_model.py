"""An emolens emotion model in ONNX, run with ONNX Runtime (no torch).

The model file describes itself (labels, input size, channels, mean/std, whether it returns logits)
in its ``metadata_props`` (:class:`~emolens.modelmeta.ModelMeta`). :class:`EmotionModel` reads that,
checks that the graph agrees with it, and turns face crops into class probabilities. One
instance may be shared by threads: ONNX Runtime sessions are safe for concurrent ``run`` calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnxruntime as ort

from ..errors import InvalidInput, ModelFormatError
from ..modelmeta import ModelMeta
from ..preprocess import softmax, to_model_input

log = logging.getLogger(__name__)

_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


DEFAULT_THREADS = 1
"""Intra-op threads of each ONNX Runtime session when the caller asks for the default (``threads=0``).
Our models are small (a 75k-parameter detector, 1-3 MB classifiers) and the engine runs three of them
one after the other: measured on the 2-core CPU, one thread per session (no pool to spin and wake)
analyses video 1.6-2x faster than ONNX Runtime's own default of one thread per core (``bench/video_speed.py``;
e.g. fer_woman2.mp4 103 against 58 frames/s) and photos 1.2x faster; only big classifier batches lose
(batch 64: 5,200 against 9,200 faces/s). Parallelism comes from analysing several images at once
(``analyze_many(workers=...)``, ``emolens analyze --workers``) instead."""


def _open_session(path: Path, threads: int, providers: Sequence[str] | None, optimize: bool) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelFormatError(f"model file not found: {path}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    opts.intra_op_num_threads = int(threads) if threads > 0 else DEFAULT_THREADS
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only; we report problems ourselves
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as e:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFormatError(f"{path} is not a readable ONNX model: {first[:300]}") from e


def _session_meta(sess: ort.InferenceSession, path: Path) -> ModelMeta:
    try:
        return ModelMeta.from_props(dict(sess.get_modelmeta().custom_metadata_map), source=str(path))
    except ModelFormatError as e:
        if str(path) in str(e):
            raise
        raise ModelFormatError(f"{path}: {e}") from e


def read_model_meta(path: str | Path) -> ModelMeta:
    """The :class:`ModelMeta` stored in an ONNX file (without optimising the graph)."""
    p = Path(path)
    return _session_meta(_open_session(p, threads=1, providers=None, optimize=False), p)


def _dim(d: Any) -> int | None:
    """A fixed dimension as int, or None when symbolic/unknown."""
    return d if isinstance(d, int) and d > 0 else None


def _temperature(meta: ModelMeta, path: Path) -> float:
    """``extra["temperature"]`` of the metadata (1.0 when absent): probabilities are ``softmax(logits / T)``."""
    t = meta.extra.get("temperature", 1.0)
    if isinstance(t, bool) or not isinstance(t, int | float) or not (0.0 < float(t) < 1e3):
        raise ModelFormatError(f"{path}: metadata temperature must be a positive number, got {t!r}")
    if float(t) != 1.0 and meta.output != "logits":
        raise ModelFormatError(f"{path}: a temperature needs a model whose output is logits, not {meta.output!r}")
    return float(t)


def to_probabilities(y: np.ndarray, meta: ModelMeta, temperature: float) -> np.ndarray:
    """A graph's ``(N, K)`` outputs -> probabilities: ``softmax(y / temperature)`` for ``logits`` models,
    renormalised non-negative values for ``probs`` models (shared by every backend, so none drifts)."""
    if meta.output == "logits":
        return softmax(y / temperature, axis=1)
    p = np.clip(y, 0.0, None)
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)


def predict_crops(meta: ModelMeta, predict_input: Callable[[np.ndarray], np.ndarray], crops: Sequence[np.ndarray],
                  batch_size: int = 64, tta: bool = False) -> np.ndarray:
    """Face crops -> ``(N, K)`` probabilities through ``predict_input`` (a local session or a remote server),
    in batches of ``batch_size``: every crop resized and normalised as ``meta`` says
    (:func:`emolens.preprocess.to_model_input`); ``tta`` averages with the mirrored crop."""
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be >= 1, got {batch_size}")
    out = np.empty((len(crops), meta.num_classes), dtype=np.float64)
    for i in range(0, len(crops), batch_size):
        x = to_model_input(crops[i : i + batch_size], meta.input_size, meta.channels, meta.mean, meta.std)
        p = predict_input(x)
        if tta:
            p = (p + predict_input(np.ascontiguousarray(x[..., ::-1]))) / 2.0
        out[i : i + len(x)] = p
    return out


@runtime_checkable
class FaceClassifier(Protocol):
    """What :class:`~emolens.inference.analyzer.Analyzer` uses of an emotion model: :class:`EmotionModel`
    runs one file in-process; any object with this surface works too (``emolens.serving.triton_client.
    TritonEmotionModel`` classifies through a Triton server)."""

    name: str
    labels: tuple[str, ...]
    meta: ModelMeta

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 64, tta: bool = False) -> np.ndarray:
        """Face crops (uint8 RGB or gray, any size) -> ``(N, K)`` probabilities in label order."""
        ...


class EmotionModel:
    """A loaded emotion model. ``threads``: ONNX Runtime intra-op threads (0 = its default, one per
    core); ``providers``: execution providers in preference order (default: CPU only).

    Raises :class:`~emolens.errors.ModelFormatError` when the file is missing, not ONNX, has no
    emolens metadata, or its graph disagrees with the metadata (input channels/size, output width).
    """

    def __init__(self, path: str | Path, threads: int = 0, providers: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self._session = _open_session(self.path, threads, providers, optimize=True)
        self.meta: ModelMeta = _session_meta(self._session, self.path)
        if self.meta.task != "emotion":
            raise ModelFormatError(f"{self.path} is a {self.meta.task!r} model, not an emotion model")
        self.labels: tuple[str, ...] = self.meta.labels
        self.temperature = _temperature(self.meta, self.path)
        self._check_graph()

    def _check_graph(self) -> None:
        src, meta = self.path, self.meta
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ModelFormatError(f"{src}: expected one input and at least one output, got {len(inputs)} inputs")
        inp, out = inputs[0], outputs[0]
        if inp.type not in _FLOAT_TYPES:
            raise ModelFormatError(f"{src}: input {inp.name!r} has type {inp.type}, expected a float tensor")
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelFormatError(f"{src}: input {inp.name!r} has shape {shape}, expected (N, C, H, W)")
        want = (meta.channels, *meta.input_size)
        for axis, got, exp in zip(("channels", "height", "width"), shape[1:], want, strict=True):
            if _dim(got) is not None and got != exp:
                raise ModelFormatError(
                    f"{src}: graph input {axis} is {got} but the metadata says {exp} "
                    f"(input shape {shape}, metadata channels={meta.channels}, input_size={list(meta.input_size)})"
                )
        out_shape = list(out.shape) if out.shape is not None else []
        if len(out_shape) != 2:
            raise ModelFormatError(f"{src}: output {out.name!r} has shape {out_shape}, expected (N, classes)")
        if _dim(out_shape[1]) is not None and out_shape[1] != meta.num_classes:
            raise ModelFormatError(
                f"{src}: graph output has {out_shape[1]} classes but the metadata lists "
                f"{meta.num_classes} labels {list(meta.labels)}"
            )
        self._input_name, self._output_name = inp.name, out.name
        self._input_dtype = _FLOAT_TYPES[inp.type]
        self._fixed_batch = _dim(shape[0])  # None: any batch size

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph insists on, or None when it takes any."""
        return self._fixed_batch

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 64, tta: bool = False) -> np.ndarray:
        """Face crops (uint8 RGB ``(H, W, 3)`` or gray ``(H, W)``, any size) -> ``(N, K)`` probabilities.

        Crops are resized and normalised as the metadata says (:func:`emolens.preprocess.to_model_input`).
        ``tta``: average with the prediction on the mirrored crop.
        """
        return predict_crops(self.meta, self.predict_input, crops, batch_size, tta)

    def predict_input(self, x: np.ndarray) -> np.ndarray:
        """An already-normalised float ``(N, C, H, W)`` batch -> ``(N, K)`` float64 probabilities (rows sum to 1)."""
        return self._to_probs(self.raw_outputs(x))

    def raw_outputs(self, x: np.ndarray) -> np.ndarray:
        """The graph's own outputs (logits, or probabilities for ``output == "probs"`` models) for an
        already-normalised batch, before the temperature and the softmax."""
        want = (self.meta.channels, *self.meta.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InvalidInput(f"model {self.name} needs input (N, {want[0]}, {want[1]}, {want[2]}), got {x.shape}")
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, self.meta.num_classes), dtype=np.float64)
        x = np.ascontiguousarray(x, dtype=self._input_dtype)
        step = self._fixed_batch or n
        parts = []
        for i in range(0, n, step):
            chunk = x[i : i + step]
            short = step - len(chunk)
            if short:  # a fixed-batch graph: pad the last chunk, drop the padding afterwards
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)])
            parts.append(self._run(chunk)[: step - short])
        return np.concatenate(parts)

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            y = self._session.run([self._output_name], {self._input_name: x})[0]
        except Exception as e:  # onnxruntime's own error types
            raise ModelFormatError(f"{self.path}: ONNX Runtime failed on input {x.shape}: {e}") from e
        y = np.asarray(y)
        if y.ndim != 2 or y.shape != (len(x), self.meta.num_classes):
            raise ModelFormatError(
                f"{self.path}: graph returned shape {y.shape}, expected ({len(x)}, {self.meta.num_classes})"
            )
        return y.astype(np.float64)

    def _to_probs(self, y: np.ndarray) -> np.ndarray:
        p = to_probabilities(y, self.meta, self.temperature)
        if not np.all(np.isfinite(p)):
            raise ModelFormatError(f"{self.path}: the model produced non-finite outputs")
        return p

    def __repr__(self) -> str:
        return f"EmotionModel({str(self.path)!r}, labels={list(self.labels)}, input={self.meta.input_size})"

"""Classify faces through a running Triton Inference Server, over HTTP, with the official client.

    from emolens import Analyzer
    from emolens.serving.triton_client import TritonEmotionModel

    analyzer = Analyzer(model=TritonEmotionModel("localhost:8000", "fer7"))
    result = analyzer.analyze("photo.jpg")       # detection and alignment here, the emotion model on Triton

:class:`TritonEmotionModel` has the surface the Analyzer uses of an emotion model
(:class:`~emolens.inference.onnx_model.FaceClassifier`: ``name``, ``labels``, ``meta``,
``predict(crops, batch_size, tta)``). It reads the emolens metadata from the model's Triton config
(the ``parameters`` written by ``emolens export-triton``), preprocesses crops exactly as the local
engine does, sends normalised batches (KServe v2 protocol, binary tensor data by default) and turns
the returned logits into probabilities with the model's calibrated temperature, so results equal
the local ones. Every failure (server down, model not ready or not an emolens emotion model, a
refused request) raises :class:`~emolens.errors.BackendError` naming the server and the model.
One instance may be shared by threads: each thread gets its own HTTP client.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, InvalidInput, ModelFormatError
from ..inference.onnx_model import _temperature, predict_crops, to_probabilities
from ..modelmeta import ModelMeta

_META_KEYS = frozenset({"emolens_format", *ModelMeta.__dataclass_fields__})
"""The config parameters that carry the emolens metadata (:meth:`ModelMeta.to_props`)."""
_WIRE_TYPES = {"TYPE_FP32": ("FP32", np.float32), "TYPE_FP16": ("FP16", np.float16),
               "TYPE_FP64": ("FP64", np.float64)}


def _http() -> Any:
    try:
        import tritonclient.http as httpclient
    except ImportError as e:
        raise InvalidInput("the Triton client needs the cluster extra: pip install 'emolens[cluster]'") from e
    return httpclient


class TritonEmotionModel:
    """An emolens emotion model served by Triton at ``url`` (``host:port`` of its HTTP endpoint,
    default port 8000) under the name ``model`` (as written by ``emolens export-triton``).

    ``version``: the model version ('' = the server's choice). ``timeout_s``: connection and network
    timeout. ``binary``: send and receive tensors with Triton's binary data extension (smaller and
    faster than JSON lists; both are exact for float32).
    """

    def __init__(self, url: str, model: str, *, version: str = "", timeout_s: float = 30.0,
                 binary: bool = True) -> None:
        if not url or not model:
            raise InvalidInput("TritonEmotionModel needs the server url (host:port) and a model name")
        if timeout_s <= 0:
            raise InvalidInput(f"timeout_s must be positive, got {timeout_s}")
        self.url, self.name, self.version, self.binary = url, model, version, binary
        self._timeout = timeout_s
        self._local = threading.local()
        self._where = f"Triton at {url}, model {model!r}"
        if not self._call("is_server_ready"):
            raise BackendError(f"{self._where}: the server is not ready")
        config = self._call("get_model_config", model, version)
        self.meta: ModelMeta = self._read_meta(config)
        self.labels: tuple[str, ...] = self.meta.labels
        self.temperature = _temperature(self.meta, Path(self._where))
        self._read_tensors(config)

    # ------------------------------------------------------------ setup

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = _http().InferenceServerClient(self.url, connection_timeout=self._timeout,
                                                   network_timeout=self._timeout)
            self._local.client = client
        return client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A client call with every failure (refused connection, HTTP error, timeout) as BackendError."""
        from tritonclient.utils import InferenceServerException

        try:
            return getattr(self._client(), method)(*args, **kwargs)
        except InferenceServerException as e:
            raise BackendError(f"{self._where}: {e.message() or e}") from e
        except (OSError, TimeoutError) as e:  # refused, reset, unreachable, timed out
            raise BackendError(f"{self._where}: cannot reach the server ({e})") from e

    def _read_meta(self, config: dict[str, Any]) -> ModelMeta:
        params = config.get("parameters") or {}
        props = {k: str(v.get("string_value", "")) for k, v in params.items()
                 if isinstance(v, dict) and k in _META_KEYS}  # backend settings (intra_op_thread_count, ...) skipped
        try:
            meta = ModelMeta.from_props(props, source=self._where)
        except ModelFormatError as e:
            raise BackendError(f"{e} (export the repository with emolens export-triton)") from e
        if meta.task != "emotion":
            raise BackendError(f"{self._where} is a {meta.task!r} model, not an emotion model")
        return meta

    def _read_tensors(self, config: dict[str, Any]) -> None:
        inputs, outputs = config.get("input") or [], config.get("output") or []
        if len(inputs) != 1 or not outputs:
            raise BackendError(f"{self._where}: expected one input and an output in its config, got "
                               f"{len(inputs)} input(s) and {len(outputs)} output(s)")
        inp, out = inputs[0], outputs[0]
        want = [self.meta.channels, *self.meta.input_size]
        dims = [int(d) for d in inp.get("dims", [])]
        if dims != want or [int(d) for d in out.get("dims", [])] != [self.meta.num_classes]:
            raise BackendError(f"{self._where}: config dims {dims} -> {out.get('dims')} disagree with the "
                               f"metadata ({want} -> [{self.meta.num_classes}])")
        if inp.get("data_type") not in _WIRE_TYPES:
            raise BackendError(f"{self._where}: input type {inp.get('data_type')} is not a float type")
        self._input, self._output = str(inp["name"]), str(out["name"])
        self._wire, self._dtype = _WIRE_TYPES[inp["data_type"]]
        self.max_batch_size = int(config.get("max_batch_size", 0))
        if self.max_batch_size < 1:
            raise BackendError(f"{self._where}: the config has max_batch_size {self.max_batch_size}; "
                               "emolens models are served with a batch axis")

    # ------------------------------------------------------------ inference

    def raw_outputs(self, x: np.ndarray) -> np.ndarray:
        """The graph's outputs (logits) for a normalised ``(N, C, H, W)`` batch, in batches Triton accepts."""
        want = (self.meta.channels, *self.meta.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InvalidInput(f"model {self.name} needs input (N, {want[0]}, {want[1]}, {want[2]}), got {x.shape}")
        parts = [self._infer(np.ascontiguousarray(x[i : i + self.max_batch_size], dtype=self._dtype))
                 for i in range(0, len(x), self.max_batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.meta.num_classes))

    def _infer(self, x: np.ndarray) -> np.ndarray:
        http = _http()
        tensor = http.InferInput(self._input, list(x.shape), self._wire)
        tensor.set_data_from_numpy(x, binary_data=self.binary)
        wanted = http.InferRequestedOutput(self._output, binary_data=self.binary)
        result = self._call("infer", self.name, [tensor], model_version=self.version, outputs=[wanted])
        y = result.as_numpy(self._output)
        if y is None or y.shape != (len(x), self.meta.num_classes):
            got = None if y is None else y.shape
            raise BackendError(f"{self._where}: returned {got}, expected ({len(x)}, {self.meta.num_classes})")
        return np.asarray(y, dtype=np.float64)

    def predict_input(self, x: np.ndarray) -> np.ndarray:
        """A normalised ``(N, C, H, W)`` batch -> ``(N, K)`` float64 probabilities (rows sum to 1)."""
        p = to_probabilities(self.raw_outputs(x), self.meta, self.temperature)
        if not np.all(np.isfinite(p)):
            raise BackendError(f"{self._where}: the model produced non-finite outputs")
        return p

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 64, tta: bool = False) -> np.ndarray:
        """Face crops (uint8 RGB or gray, any size) -> ``(N, K)`` probabilities, as
        :meth:`~emolens.inference.onnx_model.EmotionModel.predict` computes them locally."""
        return predict_crops(self.meta, self.predict_input, crops, batch_size, tta)

    def __repr__(self) -> str:
        return f"TritonEmotionModel({self.url!r}, {self.name!r}, labels={list(self.labels)})"

"""A Triton Inference Server model repository from the packaged models.

    from emolens.serving.triton_repo import export_repository
    export_repository("triton-models")          # fer7, ferplus8, keypoints15, yunet

writes, per model, Triton's layout::

    triton-models/fer7/config.pbtxt     platform "onnxruntime_onnx", max_batch_size, dynamic_batching,
                                        inputs/outputs (types and dims from the ONNX graph, batch axis
                                        left out as Triton wants), the emolens metadata as parameters
    triton-models/fer7/labels.txt       one label per line, in output order (emotion models), named by
                                        the output's label_filename
    triton-models/fer7/1/model.onnx     the packaged file, with a dynamic batch axis (:mod:`.batch_axis`)

The config is built with Triton's own protobuf definitions (``tritonclient.grpc.model_config_pb2``,
the ``cluster`` extra) and written in protobuf text format, so Triton parses what was checked here.
Preprocessing stays on the client: the graphs take normalised ``(N, C, H, W)`` crops (emotion,
keypoints; mean, std and input size are in the parameters) or BGR images padded to multiples of 32
(YuNet), exactly as the local engine feeds them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, ModelFormatError
from ..fsio import output_error, write_text
from ..inference import yunet
from ..inference.shipped import list_shipped
from ..modelmeta import ModelMeta
from .batch_axis import TensorSpec, dynamic_batch_copy, graph_io

PLATFORM = "onnxruntime_onnx"
VERSION = "1"
LABELS_FILE = "labels.txt"
DETECTOR_NAME = "yunet"
DEFAULT_MAX_BATCH = {"emotion": 64, "keypoints": 64, "detector": 8}
"""Largest batch Triton may form, per kind of model: faces are small; whole images (YuNet) are not, and
Triton's dynamic batcher only joins requests of one image size anyway."""

_TRITON_TYPES = {
    "tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(double)": "TYPE_FP64",
    "tensor(uint8)": "TYPE_UINT8", "tensor(int8)": "TYPE_INT8", "tensor(int32)": "TYPE_INT32",
    "tensor(int64)": "TYPE_INT64", "tensor(bool)": "TYPE_BOOL", "tensor(string)": "TYPE_STRING",
}


@dataclass(frozen=True)
class RepoModel:
    """A model that can go into the repository: its Triton ``name``, source ``path``, ``kind``
    (``emotion``, ``keypoints`` or ``detector``) and emolens metadata (None for the detector)."""

    name: str
    path: Path
    kind: str
    meta: ModelMeta | None


@dataclass(frozen=True)
class ExportedModel:
    """One model written: its folder, the config written into it, and whether the graph had to be
    re-saved with a dynamic batch axis (False: ``1/model.onnx`` is the packaged file, byte for byte)."""

    name: str
    folder: Path
    config: Any  # tritonclient.grpc.model_config_pb2.ModelConfig
    rewritten: bool


def model_config_pb2() -> Any:
    """Triton's ``model_config_pb2`` module, or InvalidInput saying which extra to install."""
    try:
        from tritonclient.grpc import model_config_pb2 as mc
    except (ImportError, RuntimeError) as e:  # tritonclient without its grpc part raises RuntimeError
        raise InvalidInput(
            "Triton support needs the cluster extra: pip install 'emolens[cluster]' (tritonclient[grpc,http])"
        ) from e
    return mc


def available_models() -> list[RepoModel]:
    """The packaged emotion and keypoint models, then the YuNet detector."""
    out = [RepoModel(m.name, m.path, m.meta.task, m.meta) for m in list_shipped()]
    return [*out, RepoModel(DETECTOR_NAME, yunet.model_path(), "detector", None)]


def select_models(names: Sequence[str] | None) -> list[RepoModel]:
    """The models called ``names`` (all when None or empty), in the order given; unknown names are refused."""
    every = available_models()
    if not names:
        return every
    by_name = {m.name: m for m in every}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InvalidInput(f"no packaged model called {', '.join(map(repr, unknown))}; "
                           f"known: {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names)]


def _dims(spec: TensorSpec) -> list[int]:
    return [-1 if d is None else d for d in spec.shape[1:]]


def _tensor(entry: Any, spec: TensorSpec, mc: Any) -> None:
    if spec.type not in _TRITON_TYPES:
        raise ModelFormatError(f"tensor {spec.name!r} has type {spec.type}, which Triton's ONNX backend cannot serve")
    entry.name = spec.name
    entry.data_type = mc.DataType.Value(_TRITON_TYPES[spec.type])
    entry.dims.extend(_dims(spec))


def _parameters(model: RepoModel) -> dict[str, str]:
    if model.meta is not None:
        return model.meta.to_props()
    return {  # YuNet: what a client needs to decode its outputs (see emolens.inference.yunet)
        "task": "face_detection",
        "input_format": "BGR float32 0..255, NCHW, height and width padded to multiples of 32",
        "strides": json.dumps(list(yunet.STRIDES)),
        "landmarks": json.dumps(list(yunet.LANDMARK_NAMES)),
        "score": "sqrt(cls * obj) per cell, then NMS",
        "license": "Apache-2.0",
    }


def model_config(model: RepoModel, max_batch_size: int | None = None) -> Any:
    """The ``ModelConfig`` message for ``model`` (types and dims read from its ONNX graph)."""
    mc = model_config_pb2()
    size = DEFAULT_MAX_BATCH[model.kind] if max_batch_size is None else max_batch_size
    if size < 1:
        raise InvalidInput(f"max_batch_size must be >= 1, got {size}")
    inputs, outputs = graph_io(model.path)
    cfg = mc.ModelConfig(name=model.name, platform=PLATFORM, max_batch_size=size)
    cfg.dynamic_batching.SetInParent()
    for spec in inputs:
        _tensor(cfg.input.add(), spec, mc)
    for i, spec in enumerate(outputs):
        out = cfg.output.add()
        _tensor(out, spec, mc)
        if i == 0 and model.kind == "emotion":
            out.label_filename = LABELS_FILE
    for key, value in _parameters(model).items():
        cfg.parameters[key].string_value = value
    return cfg


def config_text(cfg: Any) -> str:
    """A ``ModelConfig`` in protobuf text format, as ``config.pbtxt`` holds it."""
    from google.protobuf import text_format

    return text_format.MessageToString(cfg)


def read_config(path: str | Path) -> Any:
    """Parse a ``config.pbtxt`` with Triton's protobuf; ModelFormatError naming the file when it does not parse."""
    from google.protobuf import text_format

    mc = model_config_pb2()
    try:
        return text_format.Parse(Path(path).read_text(encoding="utf-8"), mc.ModelConfig())
    except (OSError, UnicodeDecodeError, text_format.ParseError) as e:
        raise ModelFormatError(f"{path} is not a readable Triton model config: {e}") from e


def export_model(model: RepoModel, out: Path, max_batch_size: int | None = None) -> ExportedModel:
    """Write one model's folder under ``out`` (see the module docstring)."""
    cfg = model_config(model, max_batch_size)
    folder = out / model.name
    try:
        (folder / VERSION).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(folder / VERSION, e) from e
    rewritten = dynamic_batch_copy(model.path, folder / VERSION / "model.onnx")
    if model.kind == "emotion" and model.meta is not None:
        write_text(folder / LABELS_FILE, "".join(f"{label}\n" for label in model.meta.labels))
    write_text(folder / "config.pbtxt", config_text(cfg))
    return ExportedModel(model.name, folder, cfg, rewritten)


def export_repository(out: str | Path, names: Sequence[str] | None = None,
                      max_batch_size: int | None = None) -> list[ExportedModel]:
    """Write a Triton model repository for ``names`` (all available models when None) into ``out``.

    Other folders already in ``out`` are left alone; a model's own files are replaced.
    """
    models = select_models(names)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"--out {root} exists and is not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(root, e) from e
    return [export_model(m, root, max_batch_size) for m in models]

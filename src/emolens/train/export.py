"""Export a training checkpoint to a self-describing ONNX model, checked against PyTorch.

:func:`export_onnx` writes ``float32 (N, C, H, W) -> logits (N, K)`` with a dynamic batch axis, BN
folded into the convolutions (the exporter's eval-mode constant folding; dropout disappears), the
model's :class:`~emolens.modelmeta.ModelMeta` in ``metadata_props`` and, when evaluation data is
given, its metrics on that split. It runs ``onnx.checker`` and a parity check: ONNX Runtime and
PyTorch probabilities on the same real images must agree within ``1e-4`` or :class:`ExportError`
is raised and nothing is left on disk. Optional variants beside the model: ``<stem>.int8.onnx``
(static QDQ, per-channel, calibrated on real images) and ``<stem>.fp16.onnx`` (float16 weights,
float32 input/output), each with its accuracy change measured and recorded in its metadata.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from ..errors import EmolensError, ExportError, InvalidInput
from ..evaluation.metrics import compute_metrics
from ..evaluation.predict import OnnxPredictor, predict_batched
from ..modelmeta import ModelMeta
from ..preprocess import softmax, to_model_input
from .checkpoint import load_checkpoint

log = logging.getLogger(__name__)

PARITY_TOL = 1e-4
QUANTIZE_MODES = ("none", "int8", "fp16")
INPUT_NAME, OUTPUT_NAME = "input", "logits"
_SYNTHETIC_PARITY = 32


@dataclass(frozen=True)
class LabelledImages:
    """Images with targets in the model's label order: the split an export is scored on."""

    images: np.ndarray
    y: np.ndarray
    split: str = "test"
    dataset: str = ""


@dataclass(frozen=True)
class VariantReport:
    """A reduced-precision copy of the model and how far it moves from the float32 one."""

    kind: str  # int8 | fp16
    path: Path
    size_bytes: int
    max_abs_diff: float  # largest probability difference to the float32 ONNX model on the parity images
    top1_agreement: float  # share of parity images with the same top class as float32
    accuracy: float | None = None
    accuracy_delta: float | None = None  # variant minus float32 accuracy on the evaluation split
    calibration_images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    size_bytes: int
    opset: int
    exporter: str  # "torchscript" (the legacy exporter) or "dynamo"
    parity_max_abs_diff: float
    parity_images: int
    parity_source: str  # "given", "evaluation split" or "synthetic"
    meta: ModelMeta
    ops: dict[str, int] = field(default_factory=dict)
    variants: dict[str, VariantReport] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size_bytes": self.size_bytes, "opset": self.opset,
                "exporter": self.exporter, "parity_max_abs_diff": self.parity_max_abs_diff,
                "parity_images": self.parity_images,
                "parity_source": self.parity_source, "meta": self.meta.to_dict(), "ops": dict(self.ops),
                "variants": {k: v.to_dict() for k, v in self.variants.items()}}


def _export_graph(model: nn.Module, meta: ModelMeta, opset: int) -> tuple[onnx.ModelProto, str]:
    """Trace ``model`` to ONNX: the legacy TorchScript exporter, or the dynamo one if that fails."""
    dummy = torch.zeros(2, meta.channels, *meta.input_size)
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="emolens-export-") as tmp:
            warnings.simplefilter("ignore")
            path = Path(tmp) / "model.onnx"
            torch.onnx.export(model, (dummy,), str(path), opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], do_constant_folding=True, dynamo=False,
                              training=torch.onnx.TrainingMode.EVAL,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
            return onnx.load(str(path)), "torchscript"
    except Exception as legacy_error:  # the legacy exporter is deprecated; fall back to dynamo
        log.warning("legacy ONNX exporter failed (%s); trying the dynamo exporter", legacy_error)
        try:
            program = torch.onnx.export(model, (dummy,), opset_version=opset, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], dynamo=True, optimize=True,
                                        dynamic_shapes=({0: torch.export.Dim("batch")},))
        except Exception as e:
            raise ExportError(f"ONNX export failed with both exporters: {legacy_error}; then {e}") from e
    if program is None:
        raise ExportError("the dynamo ONNX exporter returned no program")
    return program.model_proto, "dynamo"


def _set_meta(model: onnx.ModelProto, meta: ModelMeta) -> onnx.ModelProto:
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta.to_props())
    model.producer_name = "emolens"
    model.doc_string = f"emolens {meta.task} model: {meta.architecture} trained on {meta.dataset}"
    return model


def _check(model: onnx.ModelProto, what: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # onnx raises ValidationError and shape-inference errors
        raise ExportError(f"onnx.checker rejected the {what} model: {e}") from e


def _save(model: onnx.ModelProto, path: Path) -> int:
    """Write atomically, dropping opset imports no node uses; returns the file size in bytes."""
    used = {n.domain for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, path)
    return path.stat().st_size


def _torch_probs(model: nn.Module, meta: ModelMeta, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(to_model_input(images[i:i + batch_size], meta.input_size, meta.channels,
                                                meta.mean, meta.std))
            out.append(model(x).float().numpy())
    z = np.concatenate(out)
    return softmax(z, axis=1) if meta.output == "logits" else z


def summarize_metrics(metrics: dict[str, Any], split: str = "", dataset: str = "") -> dict[str, Any]:
    """The compact metrics block embedded in model metadata (no confusion matrix or curves)."""
    keep = ("split", "dataset", "n", "accuracy", "macro_f1", "weighted_f1", "ece", "nll",
            "excluded_train_duplicates")
    out = {k: metrics[k] for k in keep if k in metrics}
    if split:
        out["split"] = split
    if dataset:
        out["dataset"] = dataset
    if isinstance(metrics.get("per_class"), dict):
        out["per_class_f1"] = {k: round(float(v["f1"]), 6) for k, v in metrics["per_class"].items()}
    try:
        json.dumps(out)
    except TypeError as e:
        raise InvalidInput(f"metrics must be JSON-serialisable: {e}") from e
    return out


def _parity_images(parity_images: np.ndarray | None, eval_data: LabelledImages | None,
                   meta: ModelMeta, limit: int) -> tuple[np.ndarray, str]:
    if parity_images is not None:
        if len(parity_images) == 0:
            raise InvalidInput("parity_images is empty; give at least one image or None")
        return np.asarray(parity_images)[:limit], "given"
    if eval_data is not None and len(eval_data.images):
        return eval_data.images[:limit], "evaluation split"
    n = min(limit, _SYNTHETIC_PARITY)
    log.warning("no images for the parity check: using %d synthetic ones (give real images for a real check)", n)
    rng = np.random.default_rng(0)
    shape = (n, *meta.input_size) + (() if meta.channels == 1 else (3,))
    return rng.integers(0, 256, size=shape, dtype=np.uint8), "synthetic"


def export_onnx(checkpoint_path: str | Path, out_path: str | Path, *, parity_images: np.ndarray | None = None,
                metrics: dict[str, Any] | None = None, opset: int = 17,
                quantize: str | Sequence[str] = "none", eval_data: LabelledImages | None = None,
                calibration_images: np.ndarray | None = None, parity_limit: int = 256,
                batch_size: int = 256) -> ExportReport:
    """Export ``checkpoint_path`` to ``out_path`` (float32) and check it; returns an :class:`ExportReport`.

    ``parity_images`` (uint8 faces) are compared between PyTorch and ONNX Runtime; without them the first
    images of ``eval_data`` are used, else synthetic noise (logged). ``metrics`` is embedded as given
    (compacted); without it, ``eval_data`` is scored with the exported model and those metrics embedded.
    ``quantize``: ``"none"``, ``"int8"``, ``"fp16"`` or several; int8 calibrates on
    ``calibration_images`` (else the parity images; some real images are required). Raises
    CheckpointError for a bad checkpoint and ExportError when export, the checker or the parity check
    fails; the float32 file is written only after all its checks passed.
    """
    modes = [quantize] if isinstance(quantize, str) else list(quantize)
    if unknown := [m for m in modes if m not in QUANTIZE_MODES]:
        raise InvalidInput(f"unknown quantize mode(s) {unknown}; use {', '.join(QUANTIZE_MODES)}")
    if "int8" in modes and calibration_images is None and parity_images is None and eval_data is None:
        raise ExportError("int8 quantization needs real calibration images (calibration_images, parity_images "
                          "or eval_data)")
    ckpt = load_checkpoint(checkpoint_path)
    model = ckpt.build_model().cpu().eval()
    meta = ckpt.meta.replace(output="logits")
    proto, exporter = _export_graph(model, meta, opset)
    _check(_set_meta(proto, meta), "exported")
    images, source = _parity_images(parity_images, eval_data, meta, parity_limit)
    onnx_fp32 = OnnxPredictor(proto.SerializeToString(), source=str(out_path))
    p_onnx = predict_batched(onnx_fp32, images, batch_size)
    diff = float(np.abs(_torch_probs(model, meta, images) - p_onnx).max())
    log.info("parity on %d %s images: max |p_torch - p_onnx| = %.3g", len(images), source, diff)
    if not diff <= PARITY_TOL:
        raise ExportError(f"parity check failed: ONNX and PyTorch probabilities differ by up to {diff:.3g} "
                          f"(limit {PARITY_TOL:g}) on {len(images)} {source} images")
    fp32_metrics = None
    if eval_data is not None:
        fp32_metrics = compute_metrics(eval_data.y, predict_batched(onnx_fp32, eval_data.images, batch_size),
                                       meta.labels)
        meta = meta.replace(metrics=summarize_metrics(fp32_metrics, eval_data.split, eval_data.dataset))
    if metrics is not None:
        meta = meta.replace(metrics=summarize_metrics(metrics))
    out = Path(out_path)
    size = _save(_set_meta(proto, meta), out)
    graph_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    report = ExportReport(out, size, graph_opset, exporter, diff, len(images), source, meta,
                          dict(Counter(n.op_type for n in proto.graph.node)))
    for mode in (m for m in modes if m != "none"):
        calib = calibration_images if calibration_images is not None else images
        ref_acc = None if fp32_metrics is None else float(fp32_metrics["accuracy"])
        report.variants[mode] = _make_variant(mode, out, meta, onnx_fp32, images, eval_data, calib, ref_acc,
                                              batch_size)
    return report


def variant_path(out_path: str | Path, kind: str) -> Path:
    """``model.onnx`` -> ``model.int8.onnx`` / ``model.fp16.onnx``."""
    p = Path(out_path)
    return p.with_name(f"{p.stem}.{kind}{p.suffix or '.onnx'}")


class _Calibration:
    """Feeds preprocessed calibration batches to onnxruntime's static quantizer."""

    def __init__(self, x: np.ndarray, batch_size: int = 32):
        self._batches = iter([{INPUT_NAME: x[i:i + batch_size]} for i in range(0, len(x), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _quantize_int8(fp32_path: Path, meta: ModelMeta, calibration_images: np.ndarray) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Calibration, CalibrationDataReader):
        pass

    x = to_model_input(calibration_images, meta.input_size, meta.channels, meta.mean, meta.std)
    with tempfile.TemporaryDirectory(prefix="emolens-int8-") as tmp:
        prepared, quantized = Path(tmp) / "prep.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantized), Reader(x), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        model = onnx.load(str(quantized))
    _float_outputs(model.graph)
    return model


def _float_outputs(graph: onnx.GraphProto) -> None:
    """Drop the QuantizeLinear -> DequantizeLinear pair in front of each graph output, so outputs
    (logits) keep float precision: quantised to 8 bits, two classes' logits often tie exactly and
    the top-1 label then depends on the label order."""
    producer = {out: node for node in graph.node for out in node.output}
    for output in graph.output:
        dq = producer.get(output.name)
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear":
            continue
        source = producer.get(q.input[0])
        if source is None or any(q.input[0] in n.input for n in graph.node if n is not q):
            continue  # a graph input, or the float value feeds other nodes too: leave the graph as it is
        source.output[list(source.output).index(q.input[0])] = output.name
        graph.node.remove(q)
        graph.node.remove(dq)


def _toposort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node follows its inputs' producers (Kahn's algorithm)."""
    produced_by = {out: i for i, node in enumerate(graph.node) for out in node.output}
    deps = [{produced_by[x] for x in node.input if x in produced_by} for node in graph.node]
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(deps):
        ready = [i for i in range(len(deps)) if i not in placed and deps[i] <= placed]
        if not ready:
            raise ExportError("the converted graph has a cycle")
        order.extend(ready)
        placed.update(ready)
    nodes = [graph.node[i] for i in order]
    del graph.node[:]
    graph.node.extend(nodes)


def _convert_fp16(fp32_path: Path) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    _toposort(model.graph)  # the converter appends its input casts after their consumers
    return model


def _make_variant(kind: str, fp32_path: Path, meta: ModelMeta, fp32: OnnxPredictor, parity: np.ndarray,
                  eval_data: LabelledImages | None, calibration: np.ndarray, fp32_acc: float | None,
                  batch_size: int) -> VariantReport:
    """Build, check, score and save the ``kind`` copy of the exported model."""
    if kind == "int8" and len(calibration) == 0:
        raise ExportError("int8 quantization needs calibration images")
    try:
        proto = _quantize_int8(fp32_path, meta, calibration) if kind == "int8" else _convert_fp16(fp32_path)
    except EmolensError:
        raise
    except Exception as e:  # the quantizers raise a variety of errors
        raise ExportError(f"{kind} conversion failed: {e}") from e
    path = variant_path(fp32_path, kind)
    quant = {"mode": kind, "calibration_images": len(calibration) if kind == "int8" else 0,
             "scheme": "static QDQ, per-channel weights, MinMax calibration" if kind == "int8"
             else "float16 weights and compute, float32 input/output"}
    trial = OnnxPredictor(_set_meta(proto, meta).SerializeToString(), source=str(path))
    p_var, p_ref = predict_batched(trial, parity, batch_size), predict_batched(fp32, parity, batch_size)
    acc = delta = None
    metrics = dict(meta.metrics)
    if eval_data is not None:
        m = compute_metrics(eval_data.y, predict_batched(trial, eval_data.images, batch_size), meta.labels)
        ref = fp32_acc if fp32_acc is not None else compute_metrics(
            eval_data.y, predict_batched(fp32, eval_data.images, batch_size), meta.labels)["accuracy"]
        acc, delta = float(m["accuracy"]), float(m["accuracy"] - ref)
        metrics = summarize_metrics(m, eval_data.split, eval_data.dataset)
        quant.update(accuracy_fp32=float(ref), accuracy_delta=delta, split=eval_data.split)
    vmeta = meta.replace(metrics=metrics, extra={**meta.extra, "quantization": quant})
    _check(_set_meta(proto, vmeta), kind)
    size = _save(proto, path)
    return VariantReport(kind, path, size, float(np.abs(p_var - p_ref).max()),
                         float((p_var.argmax(1) == p_ref.argmax(1)).mean()), acc, delta,
                         len(calibration) if kind == "int8" else 0)


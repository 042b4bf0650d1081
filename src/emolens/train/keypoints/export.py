"""Export a keypoint checkpoint to a self-describing ONNX model, checked against PyTorch.

The graph is ``float32 (N, C, S, S) -> (N, 2P)`` unit coordinates (see :mod:`.targets`), with BN
folded and a dynamic batch axis, written by the same exporter, checker and atomic save as emotion
models (:mod:`emolens.train.export`). The metadata is the checkpoint's
:class:`~emolens.modelmeta.ModelMeta` (``task="keypoints"``, point names as labels, input size,
mean/std, ``extra`` with the coordinate convention, mirror permutation and mean face) plus the
metrics measured here with the exported graph itself. The parity check runs ONNX Runtime (through
the serving :class:`~emolens.inference.landmarks.LandmarkModel`) and PyTorch on the same faces; they
must agree within ``PARITY_TOL`` unit coordinates, or :class:`~emolens.errors.ExportError` is raised
and nothing is written.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import ExportError, InvalidInput
from ...evaluation.keypoints import keypoint_metrics
from ...modelmeta import ModelMeta
from ...preprocess import to_model_input
from ..export import _check, _export_graph, _save, _set_meta
from .targets import to_pixels
from .trainer import framing_extra, load_keypoint_checkpoint

log = logging.getLogger(__name__)

PARITY_TOL = 1e-4
"""Largest allowed |torch - onnx| in unit coordinates (1e-4 of the frame: 0.0064 px at 64x64)."""
METRIC_KEYS = ("n", "mean_px", "nme", "nme_outer", "nme_median", "failure_rate")


@dataclass(frozen=True)
class KeypointSet:
    """Faces at any size with their points (pixels of those faces, NaN = missing), to score an export."""

    images: np.ndarray
    points: np.ndarray
    name: str = "test"


@dataclass(frozen=True)
class KeypointExportReport:
    """What :func:`export_keypoints_onnx` wrote and measured."""

    path: Path
    size_bytes: int
    exporter: str
    parity_max_abs_diff: float
    parity_images: int
    meta: ModelMeta
    ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size_bytes": self.size_bytes, "exporter": self.exporter,
                "parity_max_abs_diff": self.parity_max_abs_diff, "parity_images": self.parity_images,
                "meta": self.meta.to_dict(), "ops": dict(self.ops)}


def _onnx_unit(proto_bytes: bytes, images: np.ndarray, meta: ModelMeta) -> np.ndarray:
    from ...inference.landmarks import LandmarkModel

    with tempfile.TemporaryDirectory(prefix="emolens-kp-") as tmp:
        path = Path(tmp) / "keypoints.onnx"
        path.write_bytes(proto_bytes)
        model = LandmarkModel(path, threads=1)
        x = to_model_input(images, meta.input_size, meta.channels, meta.mean, meta.std)
        return np.concatenate([model.predict_input(x[i:i + 256]) for i in range(0, len(x), 256)])


def _torch_unit(model: torch.nn.Module, images: np.ndarray, meta: ModelMeta) -> np.ndarray:
    x = torch.from_numpy(to_model_input(images, meta.input_size, meta.channels, meta.mean, meta.std))
    with torch.inference_mode():
        return model(x).float().numpy().reshape(len(images), -1, 2)


def score(unit: np.ndarray, data: KeypointSet, meta: ModelMeta) -> dict[str, Any]:
    """Metrics of unit-coordinate predictions on ``data``, in pixels of ``data``'s images (square)."""
    side = data.images.shape[1]
    m = keypoint_metrics(to_pixels(unit, side), data.points, meta.labels)
    out: dict[str, Any] = {k: m[k] for k in METRIC_KEYS if k in m}
    out.update(split=data.name, image_size=side,
               per_point_nme={k: round(v.get("nme", float("nan")), 5) for k, v in m["per_point"].items()})
    return out


def export_keypoints_onnx(checkpoint_path: str | Path, out_path: str | Path, *, eval_sets: tuple[KeypointSet, ...] = (),
                          extra_metrics: dict[str, Any] | None = None, opset: int = 17,
                          parity_limit: int = 256, train_points: np.ndarray | None = None) -> KeypointExportReport:
    """Export a keypoint checkpoint to ``out_path``; see the module docstring.

    ``eval_sets`` are scored with the exported graph and their metrics embedded under their names
    (the first one's faces also serve the parity check; without any, seeded noise images do).
    ``extra_metrics`` are merged into the embedded metrics as given. ``train_points`` (unit coordinates
    of the training faces) add the ``framing`` model to a checkpoint that lacks it. Raises CheckpointError for a
    checkpoint that is not a keypoint model and ExportError when export, checker or parity fail.
    """
    ckpt, model = load_keypoint_checkpoint(checkpoint_path)
    meta = ckpt.meta.replace(output="logits")
    if "framing" not in meta.extra and train_points is not None:  # checkpoints from before framing existed
        meta = meta.replace(extra={**meta.extra, **framing_extra(train_points, meta.labels)})
    proto, exporter = _export_graph(model.cpu().eval(), meta, opset)
    _check(_set_meta(proto, meta), "exported")
    if eval_sets and len(eval_sets[0].images):
        images = eval_sets[0].images[:parity_limit]
    else:
        log.warning("no faces for the parity check: using synthetic noise images")
        shape = (32, *meta.input_size) + (() if meta.channels == 1 else (3,))
        images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    blob = proto.SerializeToString()
    diff = float(np.abs(_onnx_unit(blob, images, meta) - _torch_unit(model, images, meta)).max())
    log.info("parity on %d faces: max |torch - onnx| = %.3g unit coordinates", len(images), diff)
    if not diff <= PARITY_TOL:
        raise ExportError(f"parity check failed: ONNX and PyTorch points differ by up to {diff:.3g} "
                          f"(limit {PARITY_TOL:g}) on {len(images)} faces")
    metrics: dict[str, Any] = {}
    for data in eval_sets:
        if data.points.shape[0] != len(data.images):
            raise InvalidInput(f"eval set {data.name!r}: {len(data.images)} images but {len(data.points)} point rows")
        metrics[data.name] = score(_onnx_unit(blob, data.images, meta), data, meta)
    metrics.update(extra_metrics or {})
    meta = meta.replace(metrics=metrics)
    out = Path(out_path)
    size = _save(_set_meta(proto, meta), out)
    return KeypointExportReport(out, size, exporter, diff, len(images), meta,
                                dict(Counter(n.op_type for n in proto.graph.node)))

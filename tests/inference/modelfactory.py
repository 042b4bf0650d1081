"""Tiny ONNX emotion models for tests, built with ``onnx.helper`` (no torch, no training).

:func:`make_model` writes ``input (N, C, H, W) -> Flatten -> Gemm -> output (N, K)`` with emolens
metadata. By default the weights make class 0 respond to a bright **left** half of the image and
class 1 to a bright **right** half (all other classes 0), so a test can predict the answer:
a crop that is bright on the left is class 0, and mirroring swaps classes 0 and 1. The CLI and
API tests may import this module too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emolens.labels import FER7
from emolens.modelmeta import ModelMeta


def tiny_meta(
    labels: tuple[str, ...] = FER7, size: int = 16, channels: int = 1, output: str = "logits", **extra: object
) -> ModelMeta:
    """Metadata for a test model (mean 0.5 / std 0.25 per channel)."""
    return ModelMeta(
        labels=labels, input_size=(size, size), channels=channels, mean=(0.5,) * channels,
        std=(0.25,) * channels, architecture="test_gemm", dataset="synthetic", output=output,
        extra=dict(extra),
    )


def left_right_weights(channels: int, h: int, w: int, k: int, gain: float = 0.5) -> np.ndarray:
    """(C*H*W, K) weights: class 0 = mean of the left half minus the right half, class 1 the opposite."""
    sign = np.where(np.arange(w) < w // 2, 1.0, -1.0)
    plane = np.broadcast_to(sign, (channels, h, w)).reshape(-1) * gain / (channels * h * w / 2)
    wts = np.zeros((channels * h * w, k), dtype=np.float32)
    wts[:, 0] = plane
    if k > 1:
        wts[:, 1] = -plane
    return wts


def make_model(
    path: str | Path,
    meta: ModelMeta | None = None,
    *,
    input_shape: tuple[object, object, object, object] | None = None,
    out_classes: int | None = None,
    props: dict[str, str] | None = None,
    batch: int | str = "N",
    softmax_in_graph: bool = False,
) -> Path:
    """Write a Flatten -> Gemm model. ``input_shape`` overrides the declared graph input (to make
    a graph that disagrees with its metadata); ``out_classes`` the output width; ``props`` the
    metadata_props (default ``meta.to_props()``; pass ``{}`` for a foreign model); ``batch`` a
    fixed batch size or a symbolic name; ``softmax_in_graph`` appends Softmax (use with
    ``output="probs"`` metadata)."""
    meta = meta or tiny_meta()
    c, (h, w) = meta.channels, meta.input_size
    k = meta.num_classes if out_classes is None else out_classes
    shape = input_shape or (batch, c, h, w)
    dims = [d for d in shape[1:] if isinstance(d, int)]
    if input_shape is not None and len(dims) == 3:  # weights that fit the declared input
        c, h, w = dims
    wts = left_right_weights(c, h, w, k)
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits" if softmax_in_graph else "output"]),
    ]
    if softmax_in_graph:
        nodes.append(helper.make_node("Softmax", ["logits"], ["output"], axis=1))
    graph = helper.make_graph(
        nodes, "tiny_emotion",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [shape[0], k])],
        initializer=[numpy_helper.from_array(wts, "W"), numpy_helper.from_array(np.zeros(k, np.float32), "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="emolens-tests")
    model.ir_version = 8
    for key, value in (meta.to_props() if props is None else props).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    path = Path(path)
    onnx.save(model, str(path))
    return path

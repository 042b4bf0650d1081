"""A tiny ONNX keypoint model for tests, built with ``onnx.helper`` (no torch, no training).

The graph finds two bright spots: a soft-argmax over the left half of its input gives the
image-left eye (Kaggle's ``right_eye_center``, the subject's right) and one over the right half
the image-right eye (``left_eye_center``). Every other point is placed from those two eyes with a
fixed similarity pattern (:data:`~tests.train.keypoints.synthetic.FACE15`), so the whole face turns
and scales with the eyes. Draw two bright dots and the model reports them, whatever the framing:
enough to check the frame warps, the mapping back to image pixels, roll and alignment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emolens.data.keypoints import KAGGLE15, flip_permutation
from emolens.modelmeta import ModelMeta
from tests.train.keypoints.synthetic import FACE15

LE, RE = KAGGLE15.index("left_eye_center"), KAGGLE15.index("right_eye_center")


def keypoint_meta(size: int = 32, **extra: object) -> ModelMeta:
    mean_shape = (FACE15 + 0.5) / 96.0
    return ModelMeta(
        labels=KAGGLE15, input_size=(size, size), channels=1, mean=(0.5,), std=(0.25,),
        architecture="test_soft_argmax", dataset="synthetic", task="keypoints",
        extra={"flip": list(flip_permutation(KAGGLE15)), "mean_shape": mean_shape.round(5).tolist(), **extra},
    )


def _pattern() -> np.ndarray:
    """(4, 30) matrix: [re_u, re_v, le_u, le_v] -> all 30 coordinates, a similarity of FACE15 fixed by the eyes."""
    re_, le = FACE15[RE].astype(np.float64), FACE15[LE].astype(np.float64)
    d = le - re_
    frame = np.array([[d[0], -d[1]], [d[1], d[0]]])  # columns: d and perp(d) = (-d_y, d_x)
    w = np.zeros((4, 30))
    for i, p in enumerate(FACE15.astype(np.float64)):
        a, b = np.linalg.solve(frame, p - re_)
        # point = re + a*(le - re) + b*perp(le - re), perp(x, y) = (-y, x)
        w[0, 2 * i] += 1 - a
        w[2, 2 * i] += a
        w[1, 2 * i] += b
        w[3, 2 * i] -= b
        w[1, 2 * i + 1] += 1 - a
        w[3, 2 * i + 1] += a
        w[0, 2 * i + 1] -= b
        w[2, 2 * i + 1] += b
    return w.astype(np.float32)


def make_keypoint_model(path: str | Path, size: int = 64, gain: float = 8.0, meta: ModelMeta | None = None,
                        out_width: int | None = None) -> Path:
    """Write the two-spot model; ``out_width`` overrides the output width (to make a broken graph)."""
    meta = meta or keypoint_meta(size)
    n = size * size
    jj, ii = np.meshgrid(np.arange(size), np.arange(size))
    grid = np.stack([(jj.ravel() + 0.5) / size, (ii.ravel() + 0.5) / size], 1).astype(np.float32)  # (n, 2)
    left = np.where(jj.ravel() < size / 2, 0.0, -1e4).astype(np.float32)
    right = np.where(jj.ravel() >= size / 2, 0.0, -1e4).astype(np.float32)
    width = 30 if out_width is None else out_width
    w = _pattern()
    if width != 30:
        w = np.zeros((4, width), np.float32)
    nodes = [
        helper.make_node("Reshape", ["input", "shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "left_mask"], ["l_logits"]),
        helper.make_node("Add", ["scaled", "right_mask"], ["r_logits"]),
        helper.make_node("Softmax", ["l_logits"], ["l_p"], axis=1),
        helper.make_node("Softmax", ["r_logits"], ["r_p"], axis=1),
        helper.make_node("MatMul", ["l_p", "grid"], ["re"]),
        helper.make_node("MatMul", ["r_p", "grid"], ["le"]),
        helper.make_node("Concat", ["re", "le"], ["eyes"], axis=1),
        helper.make_node("MatMul", ["eyes", "pattern"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([-1, n], np.int64), "shape"),
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(left, "left_mask"), numpy_helper.from_array(right, "right_mask"),
        numpy_helper.from_array(grid, "grid"), numpy_helper.from_array(w, "pattern"),
    ]
    graph = helper.make_graph(
        nodes, "two_spots", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", width])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="emolens-tests")
    model.ir_version = 8
    for key, value in meta.to_props().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    path = Path(path)
    onnx.save(model, str(path))
    return path


def two_eyes(shape: tuple[int, int], right_eye: tuple[float, float], left_eye: tuple[float, float],
             sigma: float = 2.0, rgb: bool = True) -> np.ndarray:
    """A dark image with two bright spots: ``right_eye`` (the subject's right, image-left) and ``left_eye``."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w), np.float32)
    for x, y in (right_eye, left_eye):
        img += 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    out = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(out[:, :, None], 3, axis=2) if rgb else out

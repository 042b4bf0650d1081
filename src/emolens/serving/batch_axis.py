"""Give an ONNX graph a dynamic batch axis, checked to change no output.

Triton batches requests along the first axis, so every input and output of a model it serves with
``max_batch_size > 0`` must take any batch size. :func:`graph_io` reads what a file declares (with
ONNX Runtime, which every emolens install has); :func:`dynamic_batch_copy` copies a file whose
first axes are already symbolic byte for byte, and otherwise re-saves it with the ``onnx`` package
with the first axis renamed ``batch``, then runs both files in ONNX Runtime and refuses the result
(:class:`~emolens.errors.ExportError`) unless the outputs agree, at the old batch size and at twice it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import ExportError, InvalidInput, ModelFormatError
from ..fsio import atomic_path

PROBE_SIDE = 64
"""Size given to symbolic non-batch axes when a rewritten graph is checked."""
PARITY_TOL = 1e-5


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: ``name``, ONNX Runtime ``type`` (``tensor(float)``) and ``shape``
    with ``None`` for a symbolic or unknown axis."""

    name: str
    type: str
    shape: tuple[int | None, ...]


def _session(path: Path) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelFormatError(f"model file not found: {path}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own pybind error types
        raise ModelFormatError(f"{path} is not a readable ONNX model: {str(e).strip()[:300]}") from e


def _specs(args: list[ort.NodeArg]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(a.name, a.type, tuple(d if isinstance(d, int) and d > 0 else None
                                                  for d in (a.shape or []))) for a in args)


def graph_io(path: str | Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) an ONNX file declares."""
    sess = _session(Path(path))
    return _specs(sess.get_inputs()), _specs(sess.get_outputs())


def fixed_batch(specs: tuple[TensorSpec, ...]) -> bool:
    """Whether any tensor has a fixed first axis (or none at all)."""
    return any(not s.shape or s.shape[0] is not None for s in specs)


def dynamic_batch_copy(src: str | Path, dst: str | Path) -> bool:
    """Write ``src`` to ``dst`` with a dynamic first axis on every input and output; returns True
    when the graph had to be rewritten, False when it was copied unchanged."""
    src, dst = Path(src), Path(dst)
    inputs, outputs = graph_io(src)
    if any(not s.shape for s in (*inputs, *outputs)):
        raise ExportError(f"{src}: every input and output needs a batch axis for Triton, got scalars")
    if not fixed_batch(inputs + outputs):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        return False
    with atomic_path(dst) as tmp:  # a graph that fails the check never lands at dst
        _rewrite(src, tmp)
        _check_parity(src, tmp, inputs)
    return True


def _rewrite(src: Path, dst: Path) -> None:
    try:
        import onnx
    except ImportError as e:
        raise InvalidInput("re-saving a fixed-batch model needs the onnx package: "
                           "pip install 'emolens[cluster]'") from e
    model = onnx.load(str(src))
    initializers = {t.name for t in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        dims[0].ClearField("dim_value")
        dims[0].dim_param = "batch"
    del model.graph.value_info[:]  # shapes inferred for the fixed batch would contradict the new axis
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{src}: the graph with a dynamic batch axis is invalid: {e}") from e
    onnx.save(model, str(dst))


def _probe(spec: TensorSpec, batch: int, rng: np.random.Generator) -> np.ndarray:
    if spec.type not in ("tensor(float)", "tensor(double)", "tensor(float16)"):
        raise ExportError(f"cannot check a rewritten graph with a {spec.type} input ({spec.name})")
    dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}[spec.type]
    shape = (batch, *(d if d is not None else PROBE_SIDE for d in spec.shape[1:]))
    return rng.standard_normal(shape).astype(dtype)


def _check_parity(src: Path, dst: Path, inputs: tuple[TensorSpec, ...]) -> None:
    """Outputs of ``dst`` equal those of ``src`` at its own batch size, and row by row at twice it."""
    old, new = _session(src), _session(dst)
    batch = inputs[0].shape[0] or 1
    rng = np.random.default_rng(0)
    feeds = [{s.name: _probe(s, batch, rng) for s in inputs} for _ in range(2)]
    want = [old.run(None, f) for f in feeds]
    doubled = {k: np.concatenate([feeds[0][k], feeds[1][k]]) for k in feeds[0]}
    try:
        got_same = new.run(None, feeds[0])
        got_double = new.run(None, doubled)
    except Exception as e:  # onnxruntime's own error types: a Reshape that bakes the batch in, ...
        raise ExportError(f"{src}: the graph does not run with a dynamic batch axis: {str(e)[:300]}") from e
    for a, b, c, d in zip(want[0], want[1], got_same, got_double, strict=True):
        both = np.concatenate([a, b])
        if a.shape != c.shape or both.shape != d.shape:
            raise ExportError(f"{src}: output shapes change with a dynamic batch axis: {a.shape} -> {c.shape}")
        diff = max(float(np.max(np.abs(a - c), initial=0.0)), float(np.max(np.abs(both - d), initial=0.0)))
        if diff > PARITY_TOL:
            raise ExportError(f"{src}: outputs change with a dynamic batch axis (max |diff| {diff:.2e})")

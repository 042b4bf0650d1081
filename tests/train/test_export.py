"""ONNX export: metadata round trip, PyTorch parity, graph hygiene, int8/fp16 variants, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from emolens.errors import CheckpointError, ExportError, InvalidInput  # noqa: E402
from emolens.evaluation.predict import OnnxPredictor, TorchPredictor  # noqa: E402
from emolens.modelmeta import ModelMeta  # noqa: E402
from emolens.train import export as export_mod  # noqa: E402
from emolens.train.checkpoint import load_checkpoint  # noqa: E402
from emolens.train.export import PARITY_TOL, LabelledImages, export_onnx, variant_path  # noqa: E402
from tests.evaluation.helpers import make_checkpoint, make_dataset  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", arch="tiny", size=24, steps=12)


@pytest.fixture(scope="module")
def data() -> LabelledImages:
    test = make_dataset(n_per_class=6).splits["test"]
    return LabelledImages(test.images, test.labels, "test", "synthetic")


@pytest.fixture(scope="module")
def exported(checkpoint: Path, data: LabelledImages, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    calib = make_dataset(n_per_class=6).splits["train"].images
    return export_onnx(checkpoint, out, eval_data=data, calibration_images=calib, quantize=("int8", "fp16"))


def _props(path: Path) -> dict[str, str]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(sess.get_modelmeta().custom_metadata_map)


def test_metadata_round_trip(exported, checkpoint: Path) -> None:
    meta = ModelMeta.from_props(_props(exported.path), source=str(exported.path))
    ckpt_meta = load_checkpoint(checkpoint).meta
    assert meta == ckpt_meta.replace(metrics=meta.metrics)  # everything but the metrics is the checkpoint's
    assert meta.output == "logits" and meta.labels == ckpt_meta.labels
    assert meta.metrics["split"] == "test" and meta.metrics["dataset"] == "synthetic"
    assert meta.metrics["n"] == 42
    assert 0 <= meta.metrics["accuracy"] <= 1 and "macro_f1" in meta.metrics
    assert set(meta.metrics["per_class_f1"]) == set(meta.labels)
    assert exported.meta == meta


def test_parity_with_pytorch(exported, checkpoint: Path) -> None:
    assert 0 <= exported.parity_max_abs_diff <= PARITY_TOL
    assert exported.parity_source == "evaluation split" and exported.parity_images == 42
    images = make_dataset(n_per_class=1).splits["val"].images  # other images, other batch sizes
    onnx_pred, torch_pred = OnnxPredictor(exported.path), TorchPredictor(checkpoint)
    for batch in (images[:1], images):
        assert np.abs(onnx_pred.predict(batch) - torch_pred.predict(batch)).max() <= PARITY_TOL


def test_graph_is_clean_with_dynamic_batch(exported) -> None:
    model = onnx.load(str(exported.path))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"BatchNormalization", "Dropout"}  # BN folded, training-only ops gone
    assert ops == set(exported.ops)
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    assert exported.size_bytes == exported.path.stat().st_size
    assert exported.size_bytes < 4.5 * 50_000 + 20_000  # ~4 bytes per parameter plus the graph


def test_int8_variant(exported) -> None:
    v = exported.variants["int8"]
    assert v.path == variant_path(exported.path, "int8") and v.path.name == "model.int8.onnx"
    assert v.size_bytes < exported.size_bytes
    meta = ModelMeta.from_props(_props(v.path))
    q = meta.extra["quantization"]
    assert q["mode"] == "int8" and q["calibration_images"] == 42 == v.calibration_images
    assert q["accuracy_delta"] == pytest.approx(v.accuracy_delta)
    assert v.accuracy == pytest.approx(meta.metrics["accuracy"])
    assert v.accuracy_delta == pytest.approx(v.accuracy - exported.meta.metrics["accuracy"])
    graph = onnx.load(str(v.path)).graph
    assert {n.op_type for n in graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    (last,) = [n for n in graph.node if graph.output[0].name in n.output]
    assert last.op_type not in ("QuantizeLinear", "DequantizeLinear")  # logits stay float: no 8-bit ties
    assert v.top1_agreement >= 0.9 and v.max_abs_diff < 0.2


def test_fp16_variant_keeps_float32_io(exported) -> None:
    v = exported.variants["fp16"]
    model = onnx.load(str(v.path))
    onnx.checker.check_model(model)
    f32 = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == f32
    assert model.graph.output[0].type.tensor_type.elem_type == f32
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert v.max_abs_diff < 1e-2 and v.top1_agreement >= 0.95
    assert ModelMeta.from_props(_props(v.path)).extra["quantization"]["mode"] == "fp16"


def test_given_metrics_are_compacted(checkpoint: Path, data: LabelledImages, tmp_path: Path) -> None:
    full = {"accuracy": 0.5, "macro_f1": 0.4, "split": "test", "n": 10, "confusion_matrix": [[1]],
            "per_class": {"anger": {"f1": 0.25, "precision": 1, "recall": 1, "support": 3}}}
    report = export_onnx(checkpoint, tmp_path / "m.onnx", parity_images=data.images[:8], metrics=full)
    m = ModelMeta.from_props(_props(tmp_path / "m.onnx")).metrics
    assert m == {"accuracy": 0.5, "macro_f1": 0.4, "split": "test", "n": 10, "per_class_f1": {"anger": 0.25}}
    assert report.parity_source == "given" and report.parity_images == 8 and not report.variants


def test_synthetic_parity_and_int8_needs_real_images(checkpoint: Path, tmp_path: Path) -> None:
    report = export_onnx(checkpoint, tmp_path / "a.onnx")
    assert report.parity_source == "synthetic" and report.meta.metrics == {}
    with pytest.raises(ExportError, match="real calibration images"):
        export_onnx(checkpoint, tmp_path / "b.onnx", quantize="int8")
    assert not (tmp_path / "b.onnx").exists() and not variant_path(tmp_path / "b.onnx", "int8").exists()


def test_failed_parity_raises_and_writes_nothing(checkpoint: Path, data: LabelledImages, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = export_mod._torch_probs
    monkeypatch.setattr(export_mod, "_torch_probs", lambda *a, **k: real(*a, **k) + 1e-3)
    with pytest.raises(ExportError, match="parity check failed"):
        export_onnx(checkpoint, tmp_path / "m.onnx", parity_images=data.images)
    assert not list(tmp_path.iterdir())


def test_corrupt_checkpoint(checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(checkpoint.read_bytes()[: len(checkpoint.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        export_onnx(bad, tmp_path / "m.onnx")
    with pytest.raises(CheckpointError, match="not found"):
        export_onnx(tmp_path / "missing.pt", tmp_path / "m.onnx")


def test_bad_arguments(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="quantize"):
        export_onnx(checkpoint, tmp_path / "m.onnx", quantize="int4")
    with pytest.raises(InvalidInput, match="parity_images is empty"):
        export_onnx(checkpoint, tmp_path / "m.onnx", parity_images=np.zeros((0, 24, 24), np.uint8))


@pytest.mark.shared
def test_parity_and_int8_on_real_faces(checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    from emolens.evaluation.runner import load_dataset_for_model, select_split

    meta = load_checkpoint(checkpoint).meta
    ds = load_dataset_for_model(meta, "fer2013", shared_data / "fer2013" / "fer2013.csv.gz")
    test = select_split(ds, meta, "test")
    data = LabelledImages(test.images[:300], test.y[:300], "test", ds.name)
    report = export_onnx(checkpoint, tmp_path / "real.onnx", eval_data=data, quantize="int8",
                         calibration_images=ds.split("train").images[:200])
    assert report.parity_source == "evaluation split" and report.parity_images == 256  # parity_limit
    assert report.parity_max_abs_diff <= PARITY_TOL
    v = report.variants["int8"]
    assert v.calibration_images == 200 and v.accuracy_delta is not None
    assert ModelMeta.from_props(_props(v.path)).extra["quantization"]["split"] == "test"

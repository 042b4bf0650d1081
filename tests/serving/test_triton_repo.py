"""``emolens export-triton``: configs parsed by Triton's own protobuf, exported graphs run in ONNX Runtime
with the shapes their config declares (batch 1 and > 1) and agree with the packaged files, on real face
crops and photos from ../shared and on generated inputs; a fixed batch axis is made dynamic or refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from emolens.cli import main
from emolens.errors import ExportError, InvalidInput
from emolens.inference.analyzer import Analyzer
from emolens.inference.imageio import load_image
from emolens.modelmeta import ModelMeta
from emolens.preprocess import to_model_input
from emolens.serving.batch_axis import dynamic_batch_copy, graph_io
from emolens.serving.triton_repo import available_models, export_repository, read_config, select_models

pytest.importorskip("tritonclient.grpc")
TOL = 1e-5
PHOTOS = ("face_recognition_two_people.jpg", "dlib_bald_guys.jpg", "wujie_angry_man.jpg", "fer_justin.jpg")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("triton") / "models"
    export_repository(out)
    return out


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_every_config_parses_with_tritons_protobuf(repo: Path) -> None:
    models = available_models()
    assert [m.name for m in models] == ["fer7", "ferplus8", "keypoints15", "yunet"]
    assert sorted(p.name for p in repo.iterdir()) == sorted(m.name for m in models)
    for m in models:
        cfg = read_config(repo / m.name / "config.pbtxt")
        assert cfg.name == m.name and cfg.platform == "onnxruntime_onnx"
        assert cfg.max_batch_size == (8 if m.kind == "detector" else 64)
        assert cfg.HasField("dynamic_batching")
        inputs, outputs = graph_io(repo / m.name / "1" / "model.onnx")
        for declared, spec in zip([*cfg.input, *cfg.output], [*inputs, *outputs], strict=True):
            assert declared.name == spec.name and declared.data_type == 11  # TYPE_FP32
            assert list(declared.dims) == [-1 if d is None else d for d in spec.shape[1:]]
            assert spec.shape[0] is None  # dynamic batch axis
        params = {k: v.string_value for k, v in cfg.parameters.items()}
        if m.meta is None:
            assert m.kind == "detector" and params["task"] == "face_detection"
            continue
        assert ModelMeta.from_props(params) == m.meta  # the emolens metadata travels whole
        if m.kind == "emotion":
            assert cfg.output[0].label_filename == "labels.txt"
            assert (repo / m.name / "labels.txt").read_text().splitlines() == list(m.meta.labels)
            assert list(cfg.output[0].dims) == [len(m.meta.labels)]
        else:
            assert not cfg.output[0].label_filename and not (repo / m.name / "labels.txt").exists()


def _declared_shape(repo: Path, name: str, batch: int, free: int = 96) -> tuple[int, ...]:
    dims = read_config(repo / name / "config.pbtxt").input[0].dims
    return (batch, *(free if d == -1 else d for d in dims))


def _compare(repo: Path, name: str, shipped: Path, x: np.ndarray) -> None:
    """The exported graph equals the packaged one on ``x``, whole and one row at a time."""
    exported, packaged = _session(repo / name / "1" / "model.onnx"), _session(shipped)
    inp = exported.get_inputs()[0].name
    want = packaged.run(None, {inp: x})
    got = exported.run(None, {inp: x})
    for a, b in zip(want, got, strict=True):
        assert a.shape == b.shape and a.shape[0] == len(x)
        assert float(np.max(np.abs(a - b))) <= TOL
    for i in range(len(x)):  # batch 1, through the exported file
        for a, b in zip(got, exported.run(None, {inp: x[i : i + 1]}), strict=True):
            assert float(np.max(np.abs(a[i : i + 1] - b))) <= TOL


@pytest.mark.parametrize("batch", [1, 5])
def test_exported_models_agree_on_generated_inputs(repo: Path, batch: int, rng: np.random.Generator) -> None:
    for m in available_models():
        shape = _declared_shape(repo, m.name, batch)
        x = rng.uniform(0, 255, shape) if m.kind == "detector" else rng.standard_normal(shape)
        _compare(repo, m.name, m.path, x.astype(np.float32))


@pytest.fixture(scope="module")
def crops(shared_data: Path) -> list[np.ndarray]:
    an = Analyzer(keypoints=False)
    out: list[np.ndarray] = []
    for name in PHOTOS:
        rgb = load_image(shared_data / "media" / "photos" / name).rgb
        out.extend(an.align_face(rgb, d)[0] for d in an.detect_faces(rgb))
    assert len(out) >= 6
    return out


def test_exported_face_models_agree_on_real_crops(repo: Path, crops: list[np.ndarray]) -> None:
    for m in available_models():
        if m.meta is None:
            continue
        assert _declared_shape(repo, m.name, 1)[1:] == (m.meta.channels, *m.meta.input_size)
        x = to_model_input(crops, m.meta.input_size, m.meta.channels, m.meta.mean, m.meta.std)
        _compare(repo, m.name, m.path, x.astype(np.float32))


def test_exported_detector_agrees_on_real_photos(repo: Path, shared_data: Path) -> None:
    (detector,) = select_models(["yunet"])
    _, h, w = _declared_shape(repo, "yunet", 1, free=-1)[1:]
    assert h == w == -1  # any size: the client pads to multiples of 32
    bgr = [cv2.resize(cv2.cvtColor(load_image(shared_data / "media" / "photos" / n).rgb, cv2.COLOR_RGB2BGR),
                      (320, 256)) for n in PHOTOS]
    x = np.stack(bgr).transpose(0, 3, 1, 2).astype(np.float32)
    _compare(repo, "yunet", detector.path, x)


def test_cli_exports_the_models_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repo"
    assert main(["export-triton", "--out", str(out), "--models", "ferplus8,yunet", "--max-batch-size", "4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ferplus8", "yunet"]
    assert read_config(out / "yunet" / "config.pbtxt").max_batch_size == 4
    assert "packaged file unchanged" in capsys.readouterr().out
    assert (out / "ferplus8" / "1" / "model.onnx").read_bytes() == select_models(["ferplus8"])[0].path.read_bytes()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["export-triton", "--out", str(out), "--models", "ferplus8", "--models", "yunet",
                 "--max-batch-size", "4"]) == 0  # again, over itself: the same files, nothing left over
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_cli_refuses_unknown_models_and_a_file_as_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-triton", "--out", str(tmp_path / "r"), "--models", "fer9"]) == InvalidInput.exit_code
    assert "no packaged model called 'fer9'" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["export-triton", "--out", str(tmp_path / "file")]) == InvalidInput.exit_code
    assert "not a folder" in capsys.readouterr().err


def _tiny_graph(path: Path, reshape_to: list[int] | None = None) -> None:
    """(1, 3) @ W -> (1, 2), optionally reshaped to a constant shape that bakes the batch in."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2) / 7, "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y" if reshape_to is None else "m"])]
    inits = [w]
    if reshape_to is not None:
        inits.append(numpy_helper.from_array(np.array(reshape_to, dtype=np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["m", "shape"], ["y"]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_a_fixed_batch_axis_is_made_dynamic_without_changing_outputs(tmp_path: Path) -> None:
    src, dst = tmp_path / "fixed.onnx", tmp_path / "dynamic.onnx"
    _tiny_graph(src)
    assert graph_io(src)[0][0].shape == (1, 3)
    assert dynamic_batch_copy(src, dst) is True
    (inp,), (out,) = graph_io(dst)
    assert inp.shape == (None, 3) and out.shape == (None, 2)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    y = _session(dst).run(None, {"x": x})[0]
    want = np.concatenate([_session(src).run(None, {"x": x[i : i + 1]})[0] for i in range(4)])
    assert y.shape == (4, 2) and float(np.max(np.abs(y - want))) <= TOL


def test_a_graph_that_bakes_the_batch_in_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "baked.onnx"
    _tiny_graph(src, reshape_to=[1, 2])
    with pytest.raises(ExportError, match="dynamic batch axis"):
        dynamic_batch_copy(src, tmp_path / "out.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baked.onnx"]  # nothing half-made left behind

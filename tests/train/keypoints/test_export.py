"""Keypoint export: self-describing ONNX, parity with PyTorch, embedded metrics, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emolens.errors import CheckpointError, ExportError
from emolens.inference.landmarks import LandmarkModel
from emolens.train.checkpoint import load_checkpoint, save_checkpoint
from emolens.train.keypoints import export as kp_export
from emolens.train.keypoints.export import KeypointSet, export_keypoints_onnx
from emolens.train.keypoints.recipe import load_keypoint_config
from emolens.train.keypoints.trainer import KeypointTrainer

from .synthetic import make_keypoint_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kp_export") / "run"
    cfg = load_keypoint_config(None, {"model.arch": "keypoint_tiny", "data.image_size": 32, "epochs": 2,
                                      "batch_size": 16, "out": str(out), "threads": 1, "seed": 0})
    KeypointTrainer(cfg, make_keypoint_dataset(n_train=48, n_val=16, n_test=16), progress=False).fit()
    return out


def test_export_describes_itself_and_matches_torch(run: Path, tmp_path: Path) -> None:
    ds = make_keypoint_dataset(n_train=8, n_val=8, n_test=16, seed=5)
    test = ds.split("test")
    report = export_keypoints_onnx(run / "best.pt", tmp_path / "kp.onnx",
                                   eval_sets=(KeypointSet(test.images, test.points, "test"),),
                                   extra_metrics={"persons": {"nme": 0.07}})
    assert report.parity_max_abs_diff <= 1e-4 and report.parity_images == 16
    assert "BatchNormalization" not in report.ops and report.size_bytes == (tmp_path / "kp.onnx").stat().st_size
    model = LandmarkModel(tmp_path / "kp.onnx")
    meta = model.meta
    assert meta.task == "keypoints" and meta.labels == ds.points and meta.input_size == (32, 32)
    assert meta.extra["flip"] == list(ds.flip) and "unit" in meta.extra["coordinates"]
    m = meta.metrics["test"]
    assert m["n"] == 16 and m["image_size"] == 32 and 0 < m["nme"] < 2 and len(m["per_point_nme"]) == 15
    assert meta.metrics["persons"] == {"nme": 0.07}
    # the embedded figures are what the engine's runner gives on the same faces
    pts = model.predict(list(test.images))
    err = np.linalg.norm(pts - test.points, axis=-1).mean()
    assert err == pytest.approx(m["mean_px"], rel=1e-3)
    assert report.to_dict()["meta"]["task"] == "keypoints"


def test_parity_failure_writes_nothing(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = kp_export._torch_unit
    monkeypatch.setattr(kp_export, "_torch_unit", lambda *a: real(*a) + 0.01)
    with pytest.raises(ExportError, match="parity check failed"):
        export_keypoints_onnx(run / "best.pt", tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_refuses_emotion_checkpoints(run: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(run / "best.pt")
    ckpt.meta = ckpt.meta.replace(task="emotion")
    save_checkpoint(ckpt, tmp_path / "emotion.pt")
    with pytest.raises(CheckpointError, match="not a keypoint model"):
        export_keypoints_onnx(tmp_path / "emotion.pt", tmp_path / "x.onnx")
    with pytest.raises(CheckpointError, match="not found"):
        export_keypoints_onnx(tmp_path / "absent.pt", tmp_path / "x.onnx")

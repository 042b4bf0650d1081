"""``emolens export`` end to end: parity figure, sizes, embedded metrics, int8/fp16 files, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emolens.cli import main
from emolens.evaluation.predict import OnnxPredictor
from tests.evaluation.helpers import make_checkpoint, write_folder_dataset

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export_cli")
    return {"ckpt": make_checkpoint(root / "model.pt"), "data": write_folder_dataset(root / "faces", n_per_class=3)}


def test_export_with_data_int8_fp16(files: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.onnx"
    code = main(["export", "--checkpoint", str(files["ckpt"]), "--out", str(out), "--data", str(files["data"]),
                 "--dataset", "folder", "--split", "test", "--int8", "--fp16"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "parity vs PyTorch" in stdout and "evaluation split images" in stdout
    assert "model.int8.onnx" in stdout and "model.fp16.onnx" in stdout and "accuracy" in stdout
    assert (tmp_path / "model.int8.onnx").exists() and (tmp_path / "model.fp16.onnx").exists()
    meta = OnnxPredictor(out).meta
    assert meta.metrics["split"] == "test" and meta.metrics["n"] == 21

    # Evaluating the exported model reproduces the metrics embedded at export.
    assert main(["evaluate", "--model", str(out), "--data", str(files["data"]), "--dataset", "folder",
                 "--out", str(tmp_path / "eval"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["format"] == "onnx"
    assert report["accuracy"] == pytest.approx(meta.metrics["accuracy"])
    assert report["macro_f1"] == pytest.approx(meta.metrics["macro_f1"])


def test_export_without_data_json(files: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "-c", str(files["ckpt"]), "--out", str(out), "--json", "--parity-images", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parity_source"] == "synthetic" and report["parity_images"] == 8
    assert report["parity_max_abs_diff"] <= 1e-4 and report["size_bytes"] == out.stat().st_size


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--int8"], "--int8 needs --data"),
        (["--data", "somewhere"], "go together"),
    ],
)
def test_option_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       extra: list[str], match: str) -> None:
    code = main(["export", "-c", str(files["ckpt"]), "--out", str(tmp_path / "m.onnx"), *extra])
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_corrupt_checkpoint_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert main(["export", "-c", str(bad), "--out", str(tmp_path / "m.onnx")]) == 6
    assert "bad.pt" in capsys.readouterr().err

"""``emolens train-keypoints`` and ``emolens export-keypoints`` end to end on a tiny CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emolens.cli import main
from emolens.inference.landmarks import LandmarkModel
from tests.train.keypoints.synthetic import write_kaggle_csv

pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def run(args: list[str]) -> int:
    """The ``emolens`` console entry point (core errors become exit codes, messages go to stderr)."""
    return main(args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kp_cli")
    csv = write_kaggle_csv(root / "kp.csv", n=64, size=32)
    out = root / "run"
    code = run(["train-keypoints", "--data", str(csv), "--images", "", "--image-size", "32", "--arch",
                "keypoint_tiny", "--epochs", "2", "--batch-size", "16", "--threads", "1", "--out", str(out),
                "--no-progress", "--set", "augment.rotate_deg=5"])
    assert code == 0
    return out


def test_train_writes_a_scored_run(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("config.yaml", "best.pt", "history.csv", "curves.png", "metrics.json", "predictions.png"):
        assert (trained / name).is_file()
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["n"] == 16 and metrics["split"] == "test" and "nme" in metrics
    assert "rotate_deg: 5.0" in (trained / "config.yaml").read_text()


def test_resume_and_time_limit(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["train-keypoints", "--resume", "--out", str(trained), "--no-progress"]) == 0
    assert "2 epochs" in capsys.readouterr().out  # already finished: nothing more to do
    assert run(["train-keypoints", "--resume"]) == 2  # ConfigError: --resume needs --out


def test_export_embeds_the_test_metrics(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    persons = tmp_path / "persons.json"
    persons.write_text(json.dumps({"nme": 0.08, "mean_px": 1.5, "n": 10, "per_point": {}}))
    out = tmp_path / "kp.onnx"
    assert run(["export-keypoints", "--checkpoint", str(trained / "best.pt"), "--out", str(out),
                "--metrics", f"persons={persons}"]) == 0
    text = capsys.readouterr().out
    assert "parity" in text and "test: NME" in text
    meta = LandmarkModel(out).meta
    assert meta.metrics["persons"] == {"nme": 0.08, "mean_px": 1.5, "n": 10}
    assert meta.metrics["test"]["n"] == 16 and meta.metrics["test"]["split"] == "test"


def test_errors_exit_cleanly(tmp_path: Path, trained: Path) -> None:
    assert run(["train-keypoints", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "r")]) == 5
    assert run(["train-keypoints", "--set", "augment.crop_pad=4", "--data", str(tmp_path / "x.csv")]) == 2
    assert run(["train-keypoints", "--set", "nope=1"]) == 2
    absent = ["export-keypoints", "--checkpoint", str(tmp_path / "absent.pt"), "--out", str(tmp_path / "x.onnx")]
    assert run(absent) == 6
    assert run(["export-keypoints", "--checkpoint", str(trained / "best.pt"), "--out", str(tmp_path / "x.onnx"),
                "--metrics", "no-equals-sign"]) == 2


def test_registered_in_the_main_cli() -> None:
    from emolens.cli import app

    names = {c.name for c in app.registered_commands}
    assert {"train-keypoints", "export-keypoints"} <= names

"""bench/accuracy.py: the model card's table from ONNX files, on generated data and on the real data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from emolens.inference.shipped import ShippedModel
from emolens.labels import FERPLUS8
from tests.data.test_fer2013 import fer_line, write_csv
from tests.inference.modelfactory import make_model, tiny_meta

from .helpers import bench_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "accuracy.py"
REPORT_KEYS = {"model", "file", "file_bytes", "dataset", "labels", "test_split", "n", "val_split", "val_n",
               "accuracy", "accuracy_tta", "macro_f1", "macro_f1_tta", "per_class_recall", "support",
               "confusion_matrix", "calibration", "train_duplicates", "target", "musts"}


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with bench_script("accuracy") as module:
        yield module


@pytest.fixture(autouse=True)
def _tmp_cache(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "shared_data" not in request.fixturenames:
        monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))


def half_bright(rng: np.random.Generator, left: bool) -> np.ndarray:
    """A noisy face crop bright on one half: the tiny model calls it class 0 (left) or 1 (right)."""
    img = rng.integers(0, 56, (48, 48)).astype(np.uint8)
    half = (slice(None), slice(0, 24) if left else slice(24, 48))
    img[half] += 200
    return img


def write_fer_root(root: Path, rng: np.random.Generator) -> Path:
    """A FER2013-style csv: 14 Training rows (row 13 repeats row 0), 6 PublicTest, 9 PrivateTest rows
    of which 3 copy Training rows 2, 5 and 9. Of the 6 other test rows the tiny model gets 5 right."""
    train = [(i % 7, rng.integers(0, 256, (48, 48), dtype=np.uint8)) for i in range(13)]
    train.append((3, train[0][1].copy()))
    val = [(0 if i % 2 else 1, half_bright(rng, left=bool(i % 2))) for i in range(6)]
    dup = [(train[i][0], train[i][1].copy()) for i in (2, 5, 9)]
    test = [(0, half_bright(rng, True)), dup[0], (0, half_bright(rng, True)), dup[1],
            (1, half_bright(rng, False)), dup[2], (1, half_bright(rng, False)),
            (0, half_bright(rng, False)),  # labelled anger but bright right: the model says disgust
            (0, half_bright(rng, True))]
    lines = ([fer_line(k, img, "Training") for k, img in train] + [fer_line(k, img, "PublicTest") for k, img in val]
             + [fer_line(k, img, "PrivateTest") for k, img in test])
    (root / "fer2013").mkdir(parents=True)
    write_csv(root / "fer2013" / "fer2013.csv", lines)
    return root


@pytest.fixture()
def generated(tmp_path: Path, rng: np.random.Generator) -> dict[str, Path]:
    model = make_model(tmp_path / "tiny.onnx", tiny_meta().replace(dataset="fer2013"))
    return {"root": write_fer_root(tmp_path / "data", rng), "model": model}


def check_consistent(report: dict[str, Any]) -> None:
    """Internal consistency of one model's report."""
    assert set(report) >= REPORT_KEYS
    cm = np.asarray(report["confusion_matrix"])
    assert cm.shape == (len(report["labels"]),) * 2 and cm.sum() == report["n"]
    assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    rows = cm.sum(axis=1)
    for k, label in enumerate(report["labels"]):
        assert report["support"][label] == rows[k]
        expected = cm[k, k] / rows[k] if rows[k] else 0.0
        assert report["per_class_recall"][label] == pytest.approx(expected)
    assert report["target"]["gap"] == pytest.approx(report["accuracy"] - report["target"]["must_reach"])
    dups = report["train_duplicates"]
    assert dups["removed"] + dups["n"] == report["n"]
    calib = report["calibration"]
    assert calib["temperature"] > 0 and calib["bins"] == 15
    assert all(0 <= calib[k] <= 1 for k in ("ece", "ece_ts")) and calib["nll"] > 0 and calib["nll_ts"] > 0


def test_generated_data_exact_figures(bench: ModuleType, generated: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out, figs = tmp_path / "acc.json", tmp_path / "figs"
    code = bench.main(["--data-root", str(generated["root"]), "--models", str(generated["model"]),
                       "--json", str(out), "--figures", str(figs)])
    stdout = capsys.readouterr().out
    assert code == 0
    (report,) = json.loads(out.read_text())["models"]
    check_consistent(report)
    assert report["model"] == "tiny" and report["test_split"] == "FER2013 PrivateTest"
    assert report["n"] == 9 and report["val_n"] == 6
    assert report["train_duplicates"]["removed"] == 3  # the in-Training repeat of row 0 does not count
    assert report["train_duplicates"]["accuracy"] == pytest.approx(5 / 6)
    # anger: 3 bright-left rows found, the bright-right one called disgust; disgust: both bright-right rows found
    assert report["support"]["anger"] == 4 and report["per_class_recall"]["anger"] == pytest.approx(0.75)
    assert report["support"]["disgust"] == 2 and report["per_class_recall"]["disgust"] == 1.0
    assert "3 test rows pixel-identical to a Training image removed" in stdout and "tiny" in stdout
    assert (figs / "tiny_confusion.png").stat().st_size > 0 and (figs / "tiny_reliability.png").stat().st_size > 0


def test_limit_keeps_the_first_rows(bench: ModuleType, generated: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "acc.json"
    assert bench.main(["--data-root", str(generated["root"]), "--models", str(generated["model"]),
                       "--limit", "4", "--json", str(out)]) == 0
    (report,) = json.loads(out.read_text())["models"]
    check_consistent(report)
    assert report["n"] == 4 and report["val_n"] == 4 and report["limit"] == 4
    assert report["train_duplicates"] == {**report["train_duplicates"], "removed": 2, "n": 2, "accuracy": 1.0}


def test_missing_data_root_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--data-root", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "nowhere" in proc.stderr


def test_missing_files_name_what_is_missing(bench: ModuleType, generated: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert bench.main(["--data-root", str(empty), "--models", str(generated["model"])]) == 2
    err = capsys.readouterr().err
    assert "fer2013.csv.gz" in err and len(err.strip().splitlines()) == 1
    ferplus_model = make_model(tmp_path / "eight.onnx", tiny_meta(labels=FERPLUS8).replace(dataset="ferplus"))
    assert bench.main(["--data-root", str(generated["root"]), "--models", str(ferplus_model)]) == 2
    assert "fer2013new.csv" in capsys.readouterr().err


def test_default_models_skip_non_emotion_entries(bench: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                 generated: dict[str, Path]) -> None:
    emotion = tiny_meta()
    keypoints = tiny_meta(labels=("left_eye_x", "left_eye_y")).replace(task="keypoints")
    fake = [ShippedModel("emo", generated["model"], True, "", emotion),
            ShippedModel("kp", generated["model"], False, "", keypoints)]
    monkeypatch.setattr(bench, "list_shipped", lambda: fake)
    assert [m.name for m in bench.pick_models(None)] == ["emo"]
    assert [m.name for m in bench.pick_models(f"emo,{generated['model']}")] == ["emo", "tiny"]


def test_real_data_shipped_models(bench: ModuleType, shared_data: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "acc.json"
    assert bench.main(["--data-root", str(shared_data), "--limit", "300", "--json", str(out)]) == 0
    reports = {r["model"]: r for r in json.loads(out.read_text())["models"]}
    assert {"fer7", "ferplus8"} <= set(reports)
    for report in reports.values():
        check_consistent(report)
        assert report["n"] == 300 and report["accuracy"] > 0.4  # the shipped models score about 0.58 / 0.71
    assert reports["fer7"]["test_split"] == "FER2013 PrivateTest" and reports["fer7"]["target"]["must_reach"] == 0.71
    assert "contempt" in reports["ferplus8"]["per_class_recall"] and reports["ferplus8"]["target"]["must_reach"] == 0.85
    assert "classifier throughput: see bench/engine_speed.py" in capsys.readouterr().out


def test_musts_follow_the_issue(bench: ModuleType):
    def metrics(acc: float, f1: float, recalls: dict[str, float], never_predicted: str | None = None) -> dict:
        k = len(recalls)
        cm = np.eye(k, dtype=int) * 10 + 1
        if never_predicted is not None:
            cm[:, list(recalls).index(never_predicted)] = 0
        return {"accuracy": acc, "macro_f1": f1, "per_class": {c: {"recall": r} for c, r in recalls.items()},
                "confusion_matrix": cm.tolist()}

    fer = bench.PROTOCOLS["fer2013"]
    seven = dict.fromkeys(["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"], 0.6)
    assert all(bench.check_musts(fer, metrics(0.72, 0.67, seven), 0.02).values())
    low = bench.check_musts(fer, metrics(0.72, 0.67, {**seven, "disgust": 0.30}), 0.02)
    assert low == {"accuracy >= 0.71": True, "macro-F1 >= 0.66": True, "every class recall >= 0.35": False,
                   "every class predicted": True, "ECE as shipped <= 0.03": True}
    assert not bench.check_musts(fer, metrics(0.70, 0.67, seven), 0.05)["ECE as shipped <= 0.03"]
    plus = bench.PROTOCOLS["ferplus"]
    eight = {**seven, "fear": 0.1, "contempt": 0.26}  # only disgust and contempt have a floor on FER+
    musts = bench.check_musts(plus, metrics(0.86, 0.5, eight), 0.02)
    assert all(musts.values()) and "macro-F1" not in " ".join(musts)
    musts = bench.check_musts(plus, metrics(0.86, 0.5, eight, never_predicted="contempt"), 0.02)
    assert not musts["every class predicted"]

"""``emolens evaluate`` and ``emolens compare`` end to end on generated data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emolens.cli import main
from emolens.labels import FERPLUS8
from tests.evaluation.helpers import make_checkpoint, write_folder_dataset
from tests.evaluation.test_compare import make_run

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval_cli")
    return {"ckpt": make_checkpoint(root / "model.pt"),
            "data": write_folder_dataset(root / "faces", n_per_class=3, duplicates=2)}


def test_evaluate_checkpoint_writes_report(files: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    code = main(["evaluate", "--model", str(files["ckpt"]), "--data", str(files["data"]), "--dataset", "folder",
                 "--split", "test", "--out", str(out), "--exclude-train-duplicates", "--batch-size", "8"])
    stdout = capsys.readouterr().out
    assert code == 0
    for word in ("accuracy", "macro-F1", "happiness", "2 train duplicates excluded"):
        assert word in stdout
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"] == "test" and report["n"] == 21 and report["excluded_train_duplicates"] == 2
    assert report["model"]["format"] == "checkpoint" and report["model"]["params"] > 0
    assert "tta" not in report
    assert (out / "confusion_matrix.png").stat().st_size > 0 and (out / "roc.png").stat().st_size > 0


def test_evaluate_tta_json(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", "-m", str(files["ckpt"]), "--data", str(files["data"]), "--dataset", "folder",
                 "--out", str(tmp_path), "--tta", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 23
    assert set(report["tta"]) >= {"accuracy", "macro_f1", "per_class", "method"}
    assert (tmp_path / "tta_roc.png").exists()


def test_label_set_mismatch_is_a_clear_error(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ckpt8 = make_checkpoint(tmp_path / "eight.pt", labels=FERPLUS8, steps=1)
    code = main(["evaluate", "--model", str(ckpt8), "--data", str(files["data"]), "--dataset", "folder",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "label sets differ" in err and "contempt" in err and "the model" in err and "dataset" in err


def test_non_model_file(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "readme.txt"
    junk.write_text("just text")
    code = main(["evaluate", "--model", str(junk), "--data", str(files["data"]), "--dataset", "folder",
                 "--out", str(tmp_path / "o")])
    assert code == 6
    assert "neither an emolens checkpoint" in capsys.readouterr().err


def test_compare_table_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run(tmp_path, "run_a", metrics={"accuracy": 0.6512, "macro_f1": 0.6, "params": 1000})
    b = make_run(tmp_path, "run_b", arch="vgg", val_accs=(0.3, 0.7))
    broken = tmp_path / "broken"
    broken.mkdir()
    code = main(["compare", str(a), str(b), str(broken), "--no-params"])
    captured = capsys.readouterr()
    assert code == 0
    assert "run_a" in captured.out and "run_b" in captured.out and "0.6512" in captured.out
    assert "vgg" in captured.out and "1,000" in captured.out
    assert "skipped" in captured.err and "broken" in captured.err


def test_compare_json_and_nothing_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run(tmp_path, "run_a", metrics={"accuracy": 0.5})
    assert main(["compare", str(a), "--json", "--no-params"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"][0]["test_accuracy"] == 0.5 and data["skipped"] == {}
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert "no readable run folder" in capsys.readouterr().err


@pytest.mark.shared
def test_evaluate_on_fer2013_without_train_duplicates(files: dict[str, Path], shared_data: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", "--model", str(files["ckpt"]), "--data", str(shared_data / "fer2013" / "fer2013.csv.gz"),
                 "--dataset", "fer2013", "--split", "PrivateTest", "--out", str(tmp_path),
                 "--exclude-train-duplicates", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3589 - 288 and report["excluded_train_duplicates"] == 288
    assert sum(sum(row) for row in report["confusion_matrix"]) == report["n"]
    assert report["per_class"]["disgust"]["support"] > 0

"""From the CLI: train, evaluate and export from a FER2013 csv, from FER+ votes and from an image
folder, on tiny generated data; the exported ONNX describes itself."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from emolens.cli import main
from emolens.labels import FER7
from emolens.modelmeta import ModelMeta

from ..train.synthetic import _pattern

FERPLUS_COLS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
COUNTS = {"train": 70, "val": 21, "test": 21}


def _rows(seed: int = 0):
    rng = np.random.default_rng(seed)
    for split, n in COUNTS.items():
        for i in range(n):
            k = i % 7
            yield split, k, _pattern(k, 48, rng)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_cli")
    csv_lines, vote_lines = ["emotion,pixels,Usage"], ["Usage,Image name," + ",".join(FERPLUS_COLS) + ",unknown,NF"]
    for n, (split, k, img) in enumerate(_rows()):
        csv_lines.append(f"{k},{' '.join(map(str, img.ravel()))},{USAGE[split]}")
        votes = dict.fromkeys(FERPLUS_COLS, 0)
        votes[FER7[k]] = 8
        votes["contempt" if k == 6 else "neutral"] += 2
        vote_lines.append(f"{USAGE[split]},fer{n:07d}.png," + ",".join(str(votes[c]) for c in FERPLUS_COLS) + ",0,0")
        folder = root / "folder" / split / FER7[k]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([img] * 3, -1)).resize((64, 64)).save(folder / f"{n}.png")
    csv = root / "fer2013.csv.gz"
    with gzip.open(csv, "wt") as f:
        f.write("\n".join(csv_lines) + "\n")
    votes_file = root / "fer2013new.csv"
    votes_file.write_text("\n".join(vote_lines) + "\n")
    return {"csv": csv, "votes": votes_file, "folder": root / "folder", "root": root}


@pytest.mark.parametrize("kind", ["fer2013", "ferplus", "folder"])
def test_train_evaluate_export(kind: str, data: dict[str, Path], tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))
    path = data["folder"] if kind == "folder" else data["csv"]
    extra = ["--labels", str(data["votes"])] if kind == "ferplus" else []
    run = tmp_path / "run"
    common = ["--data", str(path), "--dataset", kind, *extra]
    soft = ["--label-mode", "soft"] if kind == "ferplus" else []
    rc = main(
        [
            "train",
            *common,
            *soft,
            "--arch",
            "tiny",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--out",
            str(run),
            "--no-progress",
            "--set",
            "optim.warmup_epochs=0",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert (run / "metrics.json").exists() and (run / "history.csv").exists()

    rc = main(["evaluate", "--model", str(run / "best.pt"), *common, "--split", "test", "--out", str(tmp_path / "ev")])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    n_labels = 8 if kind == "ferplus" else 7
    assert len(metrics["labels"]) == n_labels and metrics["n"] > 0

    onnx_path = tmp_path / "model.onnx"
    rc = main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(onnx_path), *common, "--split", "test"])
    assert rc == 0, capsys.readouterr().err
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = ModelMeta.from_props(sess.get_modelmeta().custom_metadata_map)
    assert meta.num_classes == n_labels and meta.input_size == (48, 48) and meta.architecture == "tiny"
    assert meta.dataset == kind and "accuracy" in json.dumps(meta.metrics)
    assert sess.get_outputs()[0].shape[-1] == n_labels


def test_resume_from_cli_and_errors(data: dict[str, Path], tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    args = ["--data", str(data["csv"]), "--arch", "tiny", "--batch-size", "16", "--out", str(run), "--no-progress"]
    assert main(["train", *args, "--epochs", "2", "--no-evaluate"]) == 0
    assert main(["train", "--resume", "--out", str(run), "--no-progress", "--no-evaluate"]) == 0
    assert main(["train", *args, "--epochs", "2"]) == 6  # the folder already holds a run
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--resume", "--no-progress"]) == 2
    assert main(["train", *args[:2], "--arch", "tinny", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'tiny'" in capsys.readouterr().err

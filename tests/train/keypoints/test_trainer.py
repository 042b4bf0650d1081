"""The keypoint trainer: run folder, learning, exact resume, refusals, final evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emolens.config import TrainConfig
from emolens.errors import CheckpointError
from emolens.train.checkpoint import load_checkpoint
from emolens.train.keypoints.recipe import load_keypoint_config
from emolens.train.keypoints.trainer import (
    HISTORY_COLUMNS,
    KeypointTrainer,
    evaluate_keypoint_run,
    load_keypoint_checkpoint,
)

from ..helpers import kill_at_epoch, read_history
from .synthetic import make_keypoint_dataset


def _cfg(out: Path, **kw: Any) -> TrainConfig:
    base = {"model.arch": "keypoint_tiny", "data.image_size": 32, "epochs": 3, "batch_size": 16, "out": str(out),
            "seed": 1, "threads": 1, "optim.lr": 0.003, "augment.rotate_deg": 10.0}
    base.update(kw)
    return load_keypoint_config(None, base)



def test_fit_writes_run_folder_learns_and_evaluates(tmp_path: Path) -> None:
    ds = make_keypoint_dataset()
    res = KeypointTrainer(_cfg(tmp_path / "r", epochs=6), ds, progress=False).fit()
    assert res.finished and res.epochs_done == 6
    for name in ("config.yaml", "last.pt", "best.pt", "history.csv", "curves.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    hist = read_history(tmp_path / "r")
    assert list(hist[0]) == [c for c in HISTORY_COLUMNS if c != "time_s"]
    assert float(hist[-1]["train_loss"]) < float(hist[0]["train_loss"])
    assert res.best_val_nme < float(hist[0]["val_nme"])  # it learned something in a few steps
    metrics = evaluate_keypoint_run(tmp_path / "r", ds)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["nme"] == pytest.approx(metrics["nme"]) and saved["split"] == "test" and saved["n"] == 24
    assert set(saved["per_point"]) == set(ds.points)
    assert (tmp_path / "r" / "predictions.png").stat().st_size > 1000
    ckpt, model = load_keypoint_checkpoint(tmp_path / "r" / "best.pt")
    meta = ckpt.meta
    assert meta.task == "keypoints" and meta.labels == ds.points and meta.input_size == (32, 32)
    assert meta.extra["flip"] == list(ds.flip) and len(meta.extra["mean_shape"]) == 15
    assert ckpt.best_metric == pytest.approx(res.best_val_nme)
    assert sum(p.numel() for p in model.parameters()) == ckpt.extra["params"]  # type: ignore[index]


def test_killed_run_resumes_to_identical_history(tmp_path: Path) -> None:
    ds = make_keypoint_dataset(n_train=64, n_val=16, n_test=16)
    KeypointTrainer(_cfg(tmp_path / "full"), ds, progress=False).fit()
    kill_at_epoch(KeypointTrainer(_cfg(tmp_path / "killed"), ds, progress=False), 2)
    assert len(read_history(tmp_path / "killed")) == 2
    res = KeypointTrainer(_cfg(tmp_path / "killed"), ds, progress=False).fit(resume=True)
    assert res.epochs_done == 3 and read_history(tmp_path / "killed") == read_history(tmp_path / "full")


def test_time_limit_early_stop_and_refusals(tmp_path: Path) -> None:
    ds = make_keypoint_dataset(n_train=32, n_val=8, n_test=8)
    res = KeypointTrainer(_cfg(tmp_path / "z", epochs=5), ds, progress=False).fit(time_limit_s=0.0)
    assert not res.finished and res.epochs_done == 0
    assert KeypointTrainer(_cfg(tmp_path / "t", epochs=1), ds, progress=False).fit().finished
    with pytest.raises(CheckpointError, match="already holds a run"):
        KeypointTrainer(_cfg(tmp_path / "t", epochs=1), ds, progress=False).fit()
    with pytest.raises(CheckpointError, match=r"differs in: optim\.lr"):
        KeypointTrainer(_cfg(tmp_path / "t", epochs=1, **{"optim.lr": 0.1}), ds, progress=False).fit(resume=True)
    stopped = KeypointTrainer(_cfg(tmp_path / "s", epochs=30, early_stopping=1, **{"optim.lr": 1e-9}), ds,
                              progress=False).fit()
    assert stopped.stopped_early and stopped.epochs_done < 30
    # an emotion checkpoint is not a keypoint model
    ckpt = load_checkpoint(tmp_path / "t" / "last.pt")
    ckpt.meta = ckpt.meta.replace(task="emotion")
    from emolens.train.checkpoint import save_checkpoint

    save_checkpoint(ckpt, tmp_path / "emotion.pt")
    with pytest.raises(CheckpointError, match="not a keypoint model"):
        load_keypoint_checkpoint(tmp_path / "emotion.pt")

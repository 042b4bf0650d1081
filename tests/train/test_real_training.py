"""A short CPU training on real FER2013 rows must clearly beat the majority-class baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emolens.config import load_config
from emolens.data import load_dataset
from emolens.train.final import evaluate_run
from emolens.train.trainer import Trainer

pytestmark = pytest.mark.slow


def test_short_training_beats_majority_baseline(shared_data: Path, tmp_path: Path):
    cfg = load_config(
        overrides={
            "data.path": str(shared_data / "fer2013" / "fer2013.csv.gz"),
            "data.limit": 4000,
            "model.arch": "seed_cnn",
            "model.dropout": 0.0,
            "augment.hflip": 0.5,
            "augment.rotate_deg": 0,
            "augment.scale": 0,
            "augment.translate": 0,
            "augment.brightness": 0,
            "augment.contrast": 0,
            "augment.erase": 0,
            "optim.lr": 0.01,
            "optim.warmup_epochs": 0,
            "optim.label_smoothing": 0,
            "epochs": 3,
            "batch_size": 64,
            "out": str(tmp_path / "run"),
        }
    )
    ds = load_dataset(cfg.data, seed=cfg.seed)
    Trainer(cfg, ds, progress=False).fit()
    metrics = evaluate_run(tmp_path / "run", ds)  # held-out PrivateTest rows, never seen in training
    test_labels = ds.split("test").labels
    majority = np.bincount(test_labels).max() / len(test_labels)  # ~0.245 (happiness)
    assert metrics["n"] == 3589
    assert metrics["accuracy"] > majority + 0.08, (metrics["accuracy"], majority)

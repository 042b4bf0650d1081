"""model.init: a run starts from another run's weights; the classifier of another label set stays fresh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emolens.data.base import FaceDataset, Split
from emolens.errors import CheckpointError, ConfigError
from emolens.labels import FERPLUS8
from emolens.train.checkpoint import load_checkpoint
from emolens.train.snapshot import write_snapshot
from emolens.train.trainer import Trainer

from .helpers import kill_at_epoch, tiny_config
from .synthetic import _pattern, make_dataset


def _cfg(out: Path, **kw):
    return tiny_config(out, **{"model.head_std": 0.01, **kw})


def _eight_classes(n_train: int = 160, n_val: int = 48, seed: int = 3) -> FaceDataset:
    """FER+-like labels: the 7 patterns of the FER2013 set (same order as FER7 in FERPLUS8) plus an eighth."""
    rng = np.random.default_rng(seed)

    def split(name: str, n: int) -> Split:
        labels = np.arange(n) % 8
        imgs = [_pattern(int(k), 48, rng) if k < 7 else np.clip(_pattern(0, 48, rng).T[::-1] * 0.5, 0, 255)
                for k in labels]
        return Split(name, np.stack(imgs).astype(np.uint8), labels.astype(np.int64))

    return FaceDataset("synthetic8", FERPLUS8, {"train": split("train", n_train), "val": split("val", n_val),
                                                "test": split("test", 16)})


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("warm") / "src"
    Trainer(_cfg(out, epochs=6), make_dataset(), progress=False).fit()
    return out


def test_warm_start_copies_the_features_and_keeps_a_fresh_classifier(source: Path, tmp_path: Path):
    ds = _eight_classes()
    cold = Trainer(_cfg(tmp_path / "cold", epochs=1), ds, progress=False).fit()
    warm_cfg = _cfg(tmp_path / "warm", epochs=1, **{"model.init": str(source / "best.pt")})
    trainer = Trainer(warm_cfg, ds, progress=False)
    warm = trainer.fit()
    ws = trainer.warm_start
    assert ws is not None and ws.sha256 and ws.loaded
    src_state = load_checkpoint(source / "best.pt").model_state
    assert all(src_state[n].shape[0] == 7 for n in ws.skipped)  # only the 7-way classifier was left out
    assert len(ws.skipped) == 2  # its weight and bias
    extra = load_checkpoint(tmp_path / "warm" / "last.pt").extra
    assert extra["init"]["path"] == str(source / "best.pt") and extra["init"]["skipped"] == list(ws.skipped)
    # The transferred features make the first epoch far better than a cold start on the same data.
    assert warm.best_val_acc > cold.best_val_acc + 0.15, (cold.best_val_acc, warm.best_val_acc)


def test_warm_start_from_a_snapshot_and_resume_without_the_init_file(source: Path, tmp_path: Path):
    snap = write_snapshot(source, tmp_path / "snap.pt")
    assert snap.epoch == 6
    run = tmp_path / "run"
    cfg = _cfg(run, epochs=2, **{"model.init": str(tmp_path / "snap.pt")})
    kill_at_epoch(Trainer(cfg, _eight_classes(), progress=False), 1)
    (tmp_path / "snap.pt").unlink()  # a resumed run reads its own last.pt, not the init file
    res = Trainer(cfg, _eight_classes(), progress=False).fit(resume=True)
    assert res.finished and res.epochs_done == 2


def test_warm_start_refuses_another_architecture_or_a_missing_file(source: Path, tmp_path: Path):
    ds = _eight_classes()
    with pytest.raises(ConfigError, match=r"tiny at width 1\.0; this run trains a seed_cnn"):
        Trainer(_cfg(tmp_path / "a", **{"model.arch": "seed_cnn", "model.init": str(source / "best.pt")}), ds,
                progress=False).fit()
    with pytest.raises(CheckpointError, match="not found"):
        Trainer(_cfg(tmp_path / "b", **{"model.init": str(tmp_path / "nope.pt")}), ds, progress=False).fit()


def test_class_weight_power(tmp_path: Path):
    ds = make_dataset(n_train=70, n_val=14, n_test=14)
    imbalanced = FaceDataset(ds.name, ds.labels, {
        "train": Split("train", ds.splits["train"].images[:40], np.array([0] * 30 + [1] * 10)),
        "val": ds.splits["val"], "test": ds.splits["test"]})
    full = Trainer(_cfg(tmp_path / "f", **{"optim.class_weights": True}), imbalanced, progress=False).class_weight
    sqrt = Trainer(_cfg(tmp_path / "s", **{"optim.class_weights": True, "optim.class_weight_power": 0.5}),
                   imbalanced, progress=False).class_weight
    assert full is not None and sqrt is not None
    assert float(full[1] / full[0]) == pytest.approx(3.0) and float(sqrt[1] / sqrt[0]) == pytest.approx(3 ** 0.5)
    with pytest.raises(ConfigError, match="class_weight_power"):
        Trainer(_cfg(tmp_path / "n", **{"optim.class_weights": True, "optim.class_weight_power": -1}), imbalanced,
                progress=False)

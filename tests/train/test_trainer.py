import json
from pathlib import Path

import pytest

from emolens.errors import CheckpointError
from emolens.train.checkpoint import load_checkpoint
from emolens.train.final import evaluate_run
from emolens.train.trainer import Trainer

from .helpers import kill_at_epoch, read_history, tiny_config
from .synthetic import make_dataset


def _cfg(out: Path, **kw):
    return tiny_config(out, **{"augment.mixup": 0.2, **kw})



def test_fit_writes_run_folder_and_learns(tmp_path: Path):
    ds = make_dataset()
    res = Trainer(_cfg(tmp_path / "r", epochs=6), ds, progress=False).fit()
    assert res.finished and res.epochs_done == 6
    for name in ("config.yaml", "last.pt", "best.pt", "history.csv", "curves.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert res.best_val_acc > 0.5  # 7 separable patterns: far above chance (1/7)
    metrics = evaluate_run(tmp_path / "r", ds)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"] > 0.5
    assert (tmp_path / "r" / "confusion_matrix.png").exists()
    ckpt = load_checkpoint(tmp_path / "r" / "best.pt")
    assert ckpt.meta.labels == ds.labels and ckpt.meta.architecture == "tiny"


def test_killed_run_resumes_to_identical_history(tmp_path: Path):
    ds = make_dataset(n_train=140, n_val=35, n_test=35)
    Trainer(_cfg(tmp_path / "full"), ds, progress=False).fit()

    kill_at_epoch(Trainer(_cfg(tmp_path / "killed"), ds, progress=False), 2)  # in the middle of the third epoch
    assert len(read_history(tmp_path / "killed")) == 2

    res = Trainer(_cfg(tmp_path / "killed"), ds, progress=False).fit(resume=True)
    assert res.epochs_done == 3
    assert read_history(tmp_path / "killed") == read_history(tmp_path / "full")


def test_resume_refuses_other_config_and_existing_run(tmp_path: Path):
    ds = make_dataset(n_train=70, n_val=14, n_test=14)
    Trainer(_cfg(tmp_path / "r", epochs=1), ds, progress=False).fit()
    with pytest.raises(CheckpointError, match="already holds a run"):
        Trainer(_cfg(tmp_path / "r", epochs=1), ds, progress=False).fit()
    with pytest.raises(CheckpointError, match=r"differs in: optim\.lr"):
        Trainer(_cfg(tmp_path / "r", epochs=1, **{"optim.lr": 0.1}), ds, progress=False).fit(resume=True)
    # A run killed before its first checkpoint has nothing to resume: it starts again.
    res = Trainer(_cfg(tmp_path / "none", epochs=1), ds, progress=False).fit(resume=True)
    assert res.epochs_done == 1 and (tmp_path / "none" / "last.pt").exists()


def test_early_stopping_and_plateau(tmp_path: Path):
    ds = make_dataset(n_train=70, n_val=14, n_test=14)
    cfg = _cfg(tmp_path / "r", epochs=30, early_stopping=2, **{"optim.lr": 1e-6, "optim.scheduler": "plateau"})
    res = Trainer(cfg, ds, progress=False).fit()
    assert res.stopped_early and res.epochs_done < 30

"""Compact snapshots: small, loadable like any checkpoint, and a run seeded from one carries on where the
original stood (same epoch, history and learning rate) and keeps learning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emolens.cli import main
from emolens.config import load_config
from emolens.errors import CheckpointError
from emolens.train.checkpoint import load_checkpoint
from emolens.train.snapshot import is_snapshot, seed_run, write_snapshot
from emolens.train.trainer import Trainer

from .helpers import kill_at_epoch, read_history, tiny_config
from .synthetic import make_dataset, write_fer2013_csv


def _cfg(out: Path, epochs: int, **kw):
    return tiny_config(out, **{"epochs": epochs, "optim.ema": 0.9, **kw})



@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    ds = make_dataset(n_train=140, n_val=35, n_test=35)
    out = tmp_path_factory.mktemp("snap") / "run"
    Trainer(_cfg(out, epochs=2), ds, progress=False).fit()
    return out, ds


def test_snapshot_is_small_half_precision_and_loads_like_a_checkpoint(run, tmp_path: Path):
    out, ds = run
    snap = write_snapshot(out, tmp_path / "s.pt")
    full = load_checkpoint(out / "last.pt")
    assert (tmp_path / "s.pt").stat().st_size < 0.4 * (out / "last.pt").stat().st_size
    loaded = load_checkpoint(tmp_path / "s.pt")
    assert is_snapshot(loaded) and not is_snapshot(full)
    assert loaded.epoch == full.epoch == 2 and loaded.history == full.history
    assert loaded.optimizer_state is None and "train_state" not in loaded.extra
    assert all(v.dtype == torch.float16 for v in loaded.model_state.values() if v.is_floating_point())
    assert loaded.extra["snapshot"]["ema_steps"] > 0 and snap.extra["snapshot"]["source_sha256"]
    x = torch.from_numpy(ds.splits["val"].images[:16]).float().unsqueeze(1) / 255.0
    with torch.no_grad():
        a, b = full.build_model()(x).softmax(1), loaded.build_model()(x).softmax(1)
    assert float((a - b).abs().max()) < 5e-3  # the evaluated weights, rounded to float16


def test_seeded_run_trains_further_with_the_original_schedule(tmp_path: Path):
    ds = make_dataset(n_train=280, n_val=70, n_test=14)
    ema = {"optim.ema": 0.5}
    Trainer(_cfg(tmp_path / "full", epochs=8, **ema), ds, progress=False).fit()
    part = tmp_path / "part"
    kill_at_epoch(Trainer(_cfg(part, epochs=8, **ema), ds, progress=False), 2)  # the machine goes away
    part_hist = read_history(part)
    assert len(part_hist) == 2

    write_snapshot(part, tmp_path / "s.pt")
    seeded = tmp_path / "seeded"  # a changed machine: only the snapshot travelled
    seed_run(tmp_path / "s.pt", seeded)
    cfg = load_config(seeded / "config.yaml")
    assert cfg.out == str(seeded) and cfg.epochs == 8
    res = Trainer(cfg, ds, progress=False).fit(resume=True)
    assert res.finished and res.epochs_done == 8
    hist, full = read_history(seeded), read_history(tmp_path / "full")
    assert [h["val_acc"] for h in hist[:2]] == [h["val_acc"] for h in part_hist]  # the history travels
    assert [h["lr"] for h in hist] == [h["lr"] for h in full]  # same epochs, same learning rates
    # It went on learning: far above its state at the snapshot and about where the unbroken run ended.
    final, at_snapshot = float(hist[-1]["val_acc"]), float(part_hist[-1]["val_acc"])
    assert final > max(at_snapshot + 0.1, 0.5), (at_snapshot, final)
    assert final >= float(full[-1]["val_acc"]) - 0.15
    assert load_checkpoint(seeded / "best.pt").epoch >= 3


def test_seed_run_refuses_an_existing_run_and_a_full_checkpoint(run, tmp_path: Path):
    out, _ = run
    write_snapshot(out, tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match="already holds a run"):
        seed_run(tmp_path / "s.pt", out)
    with pytest.raises(CheckpointError, match="not a snapshot"):
        seed_run(out / "last.pt", tmp_path / "other")
    with pytest.raises(CheckpointError, match="not found"):
        seed_run(tmp_path / "missing.pt", tmp_path / "other")


def test_cli_snapshot_and_resume_from_it(tmp_path: Path, capsys, monkeypatch):
    data = write_fer2013_csv(tmp_path / "fer.csv.gz", (70, 14, 14))
    run_dir = tmp_path / "run"
    common = ["--arch", "tiny", "--batch-size", "32", "--threads", "1", "--no-progress"]
    assert main(["train", "--data", str(data), "--dataset", "fer2013", "--epochs", "2", "--out", str(run_dir),
                 "--set", "optim.ema=0.9", "--no-evaluate", *common]) in (0, None)
    assert main(["snapshot", str(run_dir), "--out", str(tmp_path / "snap.pt")]) in (0, None)
    assert "wrote" in capsys.readouterr().out
    moved = tmp_path / "moved"
    code = main(["train", "--resume", "--out", str(moved), "--from-snapshot", str(tmp_path / "snap.pt"),
                 "--no-progress", "--no-evaluate"])
    assert code in (0, None)
    assert len(read_history(moved)) == 2
    # --from-snapshot without --resume --out is a usage error, not a traceback
    assert main(["train", "--from-snapshot", str(tmp_path / "snap.pt"), "--data", str(data)]) not in (0, None)

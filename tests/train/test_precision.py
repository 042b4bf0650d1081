"""train.precision (bf16 autocast + channels_last), optim.ema and model.head_std, on generated data."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from emolens.errors import ConfigError
from emolens.train import precision as prec
from emolens.train.archs import create_model
from emolens.train.checkpoint import load_checkpoint
from emolens.train.trainer import Trainer, init_classifier

from .helpers import kill_at_epoch, read_history, tiny_config
from .synthetic import make_dataset

CPU = torch.device("cpu")


def _cfg(out: Path, **kw):
    return tiny_config(out, **kw)



def test_resolve_precision_follows_setting_cpu_and_amp(monkeypatch: pytest.MonkeyPatch):
    assert prec.resolve_precision("fp32", CPU) == "fp32"
    assert prec.resolve_precision("bf16", CPU) == "bf16"  # asked for explicitly: honoured even if emulated
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    assert prec.resolve_precision("auto", CPU) == "bf16"
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    assert prec.resolve_precision("auto", CPU) == "fp32"
    cuda = torch.device("cuda")
    assert prec.resolve_precision("auto", cuda, amp=True) == "bf16"
    assert prec.resolve_precision("auto", cuda, amp=False) == "fp32"
    with pytest.raises(ConfigError, match="precision must be one of"):
        prec.resolve_precision("fp16", CPU)


def test_bf16_on_cpu_means_channels_last_and_bf16_matmuls():
    assert prec.memory_format(CPU, "bf16") == torch.channels_last
    assert prec.memory_format(CPU, "fp32") == torch.contiguous_format
    a = torch.randn(4, 8)
    with prec.autocast(CPU, "bf16"):
        assert (a @ a.T).dtype == torch.bfloat16
    with prec.autocast(CPU, "fp32"):
        assert (a @ a.T).dtype == torch.float32


def test_short_bf16_run_learns_as_well_as_fp32(tmp_path: Path):
    ds = make_dataset()
    acc = {}
    for p in ("fp32", "bf16"):
        trainer = Trainer(_cfg(tmp_path / p, epochs=6, precision=p), ds, progress=False)
        assert trainer.precision == p
        acc[p] = trainer.fit().best_val_acc
    # 7 separable patterns: chance is 1/7; both precisions must learn them, and about equally well.
    assert acc["fp32"] > 0.6 and acc["bf16"] > 0.6, acc
    assert abs(acc["fp32"] - acc["bf16"]) < 0.15, acc


def test_ema_run_killed_and_resumed_matches_uninterrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ds = make_dataset(n_train=140, n_val=35, n_test=35)
    ema = {"optim.ema": 0.9}
    Trainer(_cfg(tmp_path / "full", **ema), ds, progress=False).fit()

    kill_at_epoch(Trainer(_cfg(tmp_path / "killed", **ema), ds, progress=False), 2)  # in the third epoch
    assert len(read_history(tmp_path / "killed")) == 2

    Trainer(_cfg(tmp_path / "killed", **ema), ds, progress=False).fit(resume=True)
    assert read_history(tmp_path / "killed") == read_history(tmp_path / "full")
    full, killed = (load_checkpoint(tmp_path / r / "last.pt") for r in ("full", "killed"))
    for key in ("model_state",):
        a, b = getattr(full, key), getattr(killed, key)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("train_state", "ema_state"):  # the raw weights and the average both resumed exactly
        a, b = full.extra[key], killed.extra[key]  # type: ignore[index]
        assert all(torch.equal(a[k], b[k]) for k in a)
    # The saved model is the average, not the raw weights.
    raw, avg = full.extra["train_state"], full.model_state  # type: ignore[index]
    assert any(not torch.equal(raw[k], avg[k]) for k in avg if avg[k].is_floating_point())


def test_ema_out_of_range_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"optim\.ema"):
        Trainer(_cfg(tmp_path / "r", **{"optim.ema": 1.0}), make_dataset(70, 14, 14), progress=False)


def test_head_std_starts_training_near_uniform():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 48, 48)
    spread = {}
    for std in (0.0, 0.01):
        model = create_model("seed_cnn", num_classes=7, width=0.5)
        init_classifier(model, std)
        model.eval()
        with torch.no_grad():
            p = torch.softmax(model(x), 1)
        spread[std] = float((p - 1 / 7).abs().max())
        if std:
            loss = float(-(p.log().mean(1)).mean())  # cross-entropy against uniform targets
            assert loss == pytest.approx(math.log(7), abs=0.01)
    assert spread[0.01] < 0.02 < spread[0.0]
    with pytest.raises(ConfigError, match="head_std"):
        init_classifier(create_model("tiny", num_classes=7), 1.5)

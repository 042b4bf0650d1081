"""The recipe search (train/tune.py) on tiny generated data: trials, pruning, results and resuming."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import optuna
import pytest

from emolens.config import load_config
from emolens.errors import ConfigError
from emolens.train.tune import (
    TuneConfig,
    _TrialTrainer,
    open_study,
    recipe_params,
    run_study,
    suggest,
    tune_config,
    with_overrides,
)

from .synthetic import make_dataset

BASE = {"model.arch": "tiny", "batch_size": 32, "threads": 1, "epochs": 30, "out": "runs/base"}


def _tc(out: Path, **kw: Any) -> TuneConfig:
    settings = {"out": str(out), "trials": 2, "epochs": 1, "seed": 3}
    settings.update(kw)
    return tune_config(None, dict(BASE), **settings)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_study_writes_table_plot_and_a_full_length_best_recipe(tmp_path: Path):
    ds = make_dataset(n_train=70, n_val=21, n_test=21)
    out = tmp_path / "study"
    run_study(_tc(out), ds)
    rows = _rows(out / "trials.csv")
    assert [r["trial"] for r in rows] == ["0", "1"] and all(r["state"] == "complete" for r in rows)
    assert [r["baseline"] for r in rows] == ["True", "False"]  # trial 0 is the base recipe under the proxy
    base = load_config(overrides=BASE)
    assert float(rows[0]["optim.lr"]) == base.optim.lr and float(rows[0]["augment.erase"]) == base.augment.erase
    assert all(0 <= float(r["val_acc"]) <= 1 and r["epochs"] == "1" for r in rows)
    assert {"optim.lr", "optim.weight_decay", "model.dropout", "augment.erase", "mix", "optim.ema"} <= set(rows[0])
    assert (out / "tune.png").stat().st_size > 0 and (out / "study.db").exists()
    for r in rows:  # every trial is a real run folder of the proxy recipe
        trial_cfg = load_config(out / "trials" / f"{int(r['trial']):04d}" / "config.yaml")
        assert trial_cfg.epochs == 1 and trial_cfg.optim.lr == pytest.approx(float(r["optim.lr"]))
    best = max(rows, key=lambda r: float(r["val_acc"]))
    cfg = load_config(out / "best.yaml")  # what `emolens train --config` reads
    assert cfg.epochs == 30 and cfg.model.arch == "tiny"  # the base recipe's length, not the proxy's
    assert cfg.optim.lr == pytest.approx(float(best["optim.lr"]))
    assert cfg.augment.brightness == cfg.augment.contrast == pytest.approx(float(best["augment.brightness"]))
    assert cfg.out == "runs/base_tuned"


def test_killed_study_resumes_and_counts_finished_trials(tmp_path: Path):
    ds = make_dataset(n_train=70, n_val=21, n_test=21)
    out = tmp_path / "study"
    tc = _tc(out, trials=3)
    run_study(_tc(out, trials=1), ds)
    killed = open_study(tc).ask()  # a trial that a killed session left running
    killed_params = suggest(killed) and killed.params
    study = run_study(tc, ds)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert study.trials[killed.number].state == optuna.trial.TrialState.FAIL
    retried = study.trials[killed.number + 1]  # its parameters are tried again first
    assert retried.params == killed_params and retried.state == optuna.trial.TrialState.COMPLETE
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 3  # new sessions draw new points
    with pytest.raises(ConfigError, match="other settings"):
        run_study(_tc(out, trials=3, epochs=2), ds)


def test_a_trial_is_pruned_when_the_pruner_says_so(tmp_path: Path):
    class Trial:
        number = 0

        def __init__(self) -> None:
            self.reported: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reported.append((value, step))

        def should_prune(self) -> bool:
            return True

    ds = make_dataset(n_train=35, n_val=14, n_test=14)
    cfg = load_config(overrides={**BASE, "epochs": 3, "out": str(tmp_path / "r")})
    trial = Trial()
    with pytest.raises(optuna.TrialPruned):
        _TrialTrainer(cfg, ds, trial).fit()
    assert [step for _, step in trial.reported] == [1]  # stopped after its first epoch
    assert len(_rows(tmp_path / "r" / "history.csv")) == 1
    one = load_config(overrides={**BASE, "epochs": 1, "out": str(tmp_path / "one")})
    _TrialTrainer(one, ds, Trial()).fit()  # the last epoch is never pruned: nothing left to save


def test_search_space_gives_valid_recipes():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    base = load_config()
    for _ in range(20):
        params = suggest(study.ask())
        cfg = with_overrides(base, params)
        assert not (cfg.augment.mixup and cfg.augment.cutmix)
        assert 0.005 <= cfg.optim.lr <= 0.1 and cfg.optim.ema in (0.0, 0.99, 0.998)


def test_recipes_outside_the_space_get_no_baseline():
    assert recipe_params(load_config(overrides={"augment.brightness": 0.1, "augment.contrast": 0.3})) is None
    assert recipe_params(load_config(overrides={"optim.ema": 0.999})) is None
    params = recipe_params(load_config(overrides={"augment.cutmix": 0.5}))
    assert params is not None and params["mix"] == "cutmix" and params["mix_alpha"] == 0.5


def test_bad_settings_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="pruner"):
        _tc(tmp_path, pruner="random")
    with pytest.raises(ConfigError, match="trials"):
        _tc(tmp_path, trials=0)
    proxy = _tc(tmp_path, limit=50, width=0.5, epochs=2).proxy()
    assert (proxy.data.limit, proxy.model.width, proxy.epochs) == (50, 0.5, 2)

"""Recipe search with Optuna: short proxy runs of the real trainer, pruned on validation accuracy.

Each trial trains the base recipe (a YAML file plus overrides) shortened to a proxy (``epochs``,
``data.limit`` and ``model.width`` from :class:`TuneConfig`) with hyper-parameters drawn from
:func:`suggest`: learning rate, weight decay, label smoothing, dropout, augmentation strengths,
mixup/cutmix and the weight average (EMA). After every epoch the trial reports its validation
accuracy and a pruner (median or Hyperband) may stop it. The study lives in a SQLite file in the
output folder, so a killed study resumes where it stopped: trials still marked running are failed
and retried, and ``trials`` counts finished (complete or pruned) trials over all sessions.

The output folder gets ``tune.yaml`` (these settings), ``study.db``, ``trials/NNNN/`` (each trial's
run folder), ``trials.csv`` and ``tune.png`` (the results) and ``best.yaml``: the base recipe at its
full length with the best trial's hyper-parameters, ready for ``emolens train --config``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import DataConfig, TrainConfig, config_from_dict, load_config
from ..data.base import FaceDataset
from ..errors import ConfigError
from .trainer import Trainer

log = logging.getLogger("emolens.tune")

PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class TuneConfig:
    """Settings of one study (saved as ``tune.yaml``; a resumed study must keep them)."""

    base: dict[str, Any]  # the base recipe, resolved (TrainConfig.to_dict())
    out: str = "runs/tune"
    trials: int = 20  # finished trials (complete or pruned) the study should hold
    epochs: int = 5  # proxy epochs per trial
    limit: int = 0  # proxy training images (0 = the base recipe's data.limit)
    width: float = 0.0  # proxy model width (0 = the base recipe's)
    pruner: str = "median"  # median | hyperband | none
    seed: int = 0  # the sampler's seed
    study: str = "emolens"

    def __post_init__(self) -> None:
        if self.pruner not in PRUNERS:
            raise ConfigError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.trials < 1 or self.epochs < 1 or self.limit < 0 or self.width < 0:
            raise ConfigError("trials and epochs must be >= 1, limit and width >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def proxy_overrides(self) -> dict[str, Any]:
        """The keys that turn the base recipe into a proxy run."""
        out: dict[str, Any] = {"epochs": self.epochs, "early_stopping": 0}
        if self.limit:
            out["data.limit"] = self.limit
        if self.width:
            out["model.width"] = self.width
        return out

    def proxy(self) -> TrainConfig:
        """The base recipe shortened to a proxy run (before a trial's hyper-parameters)."""
        return with_overrides(config_from_dict(self.base), self.proxy_overrides())

    def proxy_data(self) -> DataConfig:
        """The data section of the proxy runs: load the dataset once with it."""
        return self.proxy().data


def suggest(trial: Any) -> dict[str, Any]:
    """One point of the search space as ``{"section.key": value}`` config overrides."""
    brightness = trial.suggest_float("augment.brightness", 0.0, 0.4)
    mix = trial.suggest_categorical("mix", ["none", "mixup", "cutmix"])
    alpha = trial.suggest_float("mix_alpha", 0.2, 1.0) if mix != "none" else 0.0
    return {
        "optim.lr": trial.suggest_float("optim.lr", 0.005, 0.1, log=True),
        "optim.weight_decay": trial.suggest_float("optim.weight_decay", 1e-5, 2e-3, log=True),
        "optim.label_smoothing": trial.suggest_float("optim.label_smoothing", 0.0, 0.2),
        "optim.ema": trial.suggest_categorical("optim.ema", list(EMA_CHOICES)),
        "model.dropout": trial.suggest_float("model.dropout", 0.0, 0.5),
        "augment.rotate_deg": trial.suggest_float("augment.rotate_deg", 0.0, 20.0),
        "augment.scale": trial.suggest_float("augment.scale", 0.0, 0.2),
        "augment.translate": trial.suggest_float("augment.translate", 0.0, 0.15),
        "augment.brightness": brightness,
        "augment.contrast": brightness,  # one strength for both photometric jitters
        "augment.erase": trial.suggest_float("augment.erase", 0.0, 0.5),
        "augment.mixup": alpha if mix == "mixup" else 0.0,
        "augment.cutmix": alpha if mix == "cutmix" else 0.0,
    }


EMA_CHOICES = (0.0, 0.99, 0.998)


def recipe_params(cfg: TrainConfig) -> dict[str, Any] | None:
    """The search-space point of a recipe (for a baseline trial), or None when the space cannot express it
    (brightness != contrast, mixup and cutmix both on, an EMA decay outside the choices)."""
    a, o = cfg.augment, cfg.optim
    if a.brightness != a.contrast or (a.mixup and a.cutmix) or o.ema not in EMA_CHOICES:
        return None
    mix = "mixup" if a.mixup else "cutmix" if a.cutmix else "none"
    params: dict[str, Any] = {
        "augment.brightness": a.brightness, "mix": mix, "optim.lr": o.lr, "optim.weight_decay": o.weight_decay,
        "optim.label_smoothing": o.label_smoothing, "optim.ema": o.ema, "model.dropout": cfg.model.dropout,
        "augment.rotate_deg": a.rotate_deg, "augment.scale": a.scale, "augment.translate": a.translate,
        "augment.erase": a.erase,
    }
    if mix != "none":
        params["mix_alpha"] = a.mixup or a.cutmix
    return params


def with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``cfg`` with ``{"section.key": value}`` overrides applied (validated like a YAML file)."""
    tree = cfg.to_dict()
    for dotted, value in overrides.items():
        node = tree
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return config_from_dict(tree)


class _TrialTrainer(Trainer):
    """The trainer reporting each epoch's validation accuracy to an Optuna trial, which may prune it."""

    def __init__(self, cfg: TrainConfig, dataset: FaceDataset, trial: Any) -> None:
        super().__init__(cfg, dataset, progress=False)
        self.trial = trial

    def _run_epoch(self, epoch: int) -> None:
        import optuna

        super()._run_epoch(epoch)
        self.trial.report(self.history[-1]["val_acc"], epoch + 1)
        if epoch + 1 < self.cfg.epochs and self.trial.should_prune():  # the last epoch has nothing to save
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")


def _pruner(name: str, epochs: int) -> Any:
    import optuna

    if name == "median":
        # Never on the first epoch alone: it says little about the end (docs/models/README.md).
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min(2, epochs), max_resource=epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(tc: TuneConfig) -> Any:
    """Create or reopen the study in ``out/study.db``; ConfigError when it was started with other settings."""
    import optuna

    out = Path(tc.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{out.resolve() / 'study.db'}")
    study = optuna.create_study(study_name=tc.study, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=tc.seed), pruner=_pruner(tc.pruner, tc.epochs))
    # A resumed session seeds its sampler past the trials already run, so it does not draw them again.
    study.sampler = optuna.samplers.TPESampler(seed=tc.seed + len(study.trials))
    settings = {k: v for k, v in tc.to_dict().items() if k not in ("trials", "out")}
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", settings)
        baseline = recipe_params(config_from_dict(tc.base))
        if baseline is not None:  # trial 0: the base recipe itself, the yardstick for every other trial
            study.enqueue_trial(baseline, user_attrs={"baseline": True})
        else:
            log.warning("the base recipe lies outside the search space: no baseline trial")
    elif saved != settings:
        diff = sorted(k for k in settings if saved.get(k) != settings[k])
        raise ConfigError(f"{out} holds a study started with other settings (differs in: {', '.join(diff)}); "
                          "resume with the same ones or choose another --out")
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # Left running by a killed session (one study runs at a time): fail it, queue its parameters again.
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    return study


def finished(study: Any) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def run_study(tc: TuneConfig, dataset: FaceDataset, timeout_s: float | None = None) -> Any:
    """Run trials until the study holds ``tc.trials`` finished ones (or ``timeout_s``); write the results."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    proxy = tc.proxy()
    out = Path(tc.out)
    study = open_study(tc)
    (out / "tune.yaml").write_text(yaml.safe_dump(tc.to_dict(), sort_keys=False), encoding="utf-8")

    def objective(trial: Any) -> float:
        run_dir = out / "trials" / f"{trial.number:04d}"
        if run_dir.exists():  # a leftover of a study whose database was removed
            shutil.rmtree(run_dir)
        params = suggest(trial)
        cfg = with_overrides(proxy, {**params, "out": str(run_dir)})
        trainer = _TrialTrainer(cfg, dataset, trial)
        try:
            result = trainer.fit()
        finally:
            trial.set_user_attr("epochs", len(trainer.history))
            trial.set_user_attr("time_s", sum(r["time_s"] for r in trainer.history))
            trial.set_user_attr("params", params)
        log.info("trial %d: best val acc %.4f at epoch %d", trial.number, result.best_val_acc, result.best_epoch)
        return result.best_val_acc

    remaining = tc.trials - finished(study)
    if remaining > 0:
        callback = optuna.study.MaxTrialsCallback(
            tc.trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
        study.optimize(objective, n_trials=remaining + 2 * tc.trials, timeout=timeout_s, callbacks=[callback],
                       catch=(FloatingPointError,))
    write_results(study, tc)
    return study


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One row per trial: number, state, best val acc, epochs run, minutes, then its parameters."""
    rows = []
    for t in study.trials:
        row: dict[str, Any] = {
            "trial": t.number,
            "baseline": bool(t.user_attrs.get("baseline")),  # the base recipe itself
            "state": t.state.name.lower(),
            "val_acc": max(t.intermediate_values.values(), default=math.nan),  # best epoch, pruned or not
            "epochs": t.user_attrs.get("epochs", len(t.intermediate_values)),
            "minutes": round(t.user_attrs.get("time_s", math.nan) / 60, 2),
        }
        row.update(t.params)
        rows.append(row)
    return rows


def best_config(study: Any, tc: TuneConfig) -> TrainConfig:
    """The base recipe (full length) with the best trial's hyper-parameters."""
    best = study.best_trial
    cfg = with_overrides(config_from_dict(tc.base), best.user_attrs["params"])
    return dataclasses.replace(cfg, out=str(Path(tc.base["out"]).parent / f"{Path(tc.base['out']).name}_tuned"))


def write_results(study: Any, tc: TuneConfig) -> None:
    """``trials.csv``, ``tune.png`` and (once a trial completed) ``best.yaml`` in the output folder."""
    import pandas as pd

    from .tune_plot import plot_study

    out = Path(tc.out)
    rows = trial_rows(study)
    pd.DataFrame(rows).to_csv(out / "trials.csv", index=False)
    plot_study(study, out / "tune.png")
    if any(r["state"] == "complete" for r in rows):
        best = study.best_trial
        cfg = best_config(study, tc)
        which = "the base recipe itself" if best.user_attrs.get("baseline") else f"trial {best.number}"
        header = (f"# Recipe found by `emolens tune` (study {tc.study!r}, {len(rows)} trials): {which},\n"
                  f"# validation accuracy {best.value:.4f} on a proxy of {tc.epochs} epochs"
                  f"{f', {tc.limit} training images' if tc.limit else ''}"
                  f"{f', width {tc.width:g}' if tc.width else ''}; full length here.\n")
        (out / "best.yaml").write_text(header + yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")


def tune_config(base_path: str | Path | None, base_overrides: dict[str, Any], **settings: Any) -> TuneConfig:
    """A :class:`TuneConfig` from a base recipe file, its overrides and the study's settings."""
    base = load_config(base_path, base_overrides)
    return TuneConfig(base=base.to_dict(), **settings)

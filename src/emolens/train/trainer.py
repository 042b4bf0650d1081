"""The training loop: one :class:`Trainer` per run folder.

A run folder holds ``config.yaml`` (the resolved config), ``last.pt`` (written after every epoch),
``best.pt`` (best validation accuracy), ``history.csv``, ``curves.png`` and, at the end,
``metrics.json`` with the best model's test metrics. ``fit(resume=True)`` continues from ``last.pt``
exactly: every epoch draws its shuffling, augmentation and dropout randomness from
``(seed, epoch)``, so a killed and resumed run ends with the same history as an uninterrupted one
(on CPU; CUDA kernels may add their own non-determinism).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..config import OptimConfig, TrainConfig
from ..data.base import FaceDataset
from ..errors import CheckpointError, ConfigError
from ..modelmeta import ModelMeta
from .archs import count_parameters, create_model
from .augment import BatchAugment
from .checkpoint import Checkpoint, save_checkpoint
from .distill import Distiller
from .history import plot_curves, write_history
from .loop import epoch_generator, open_run, patience_exhausted, restore, run_epochs, set_lr
from .precision import autocast, memory_format, resolve_precision
from .schedule import LRSchedule
from .snapshot import is_snapshot
from .tensors import SplitTensors, channel_stats, normalize_batch, split_tensors
from .warmstart import WarmStart, warm_start

log = logging.getLogger("emolens.train")

# Settings that may differ between a run and its resumption (they do not change the result).
@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    epochs_done: int
    best_val_acc: float
    best_epoch: int
    stopped_early: bool
    finished: bool  # False when a time limit ended the run before its last epoch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda asked for, but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def make_optimizer(model: torch.nn.Module, o: OptimConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW per ``o``, with weight decay on weights only (not on biases or BN)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.momentum > 0)
    if o.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr)
    raise ConfigError(f"optim.optimizer must be sgd or adamw, got {o.optimizer!r}")


class Trainer:
    """Trains ``cfg.model.arch`` on a loaded :class:`FaceDataset` into ``cfg.out``."""

    def __init__(self, cfg: TrainConfig, dataset: FaceDataset, progress: bool = True) -> None:
        self.cfg = cfg
        self.dataset = dataset
        self.progress = progress
        self.run_dir = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        size, ch = cfg.data.image_size, cfg.data.channels
        k = len(dataset.labels)
        soft = cfg.data.label_mode == "soft"
        self.train = split_tensors(dataset.split("train"), k, size, ch, soft=soft)
        self.val = split_tensors(dataset.split("val"), k, size, ch, soft=soft)
        mean, std = channel_stats(self.train.x)
        self.meta = ModelMeta(
            labels=dataset.labels,
            input_size=(size, size),
            channels=ch,
            mean=mean,
            std=std,
            architecture=cfg.model.arch,
            dataset=dataset.name,
            extra={"label_mode": cfg.data.label_mode, "train_size": len(self.train)},
        )
        torch.manual_seed(cfg.seed)
        self.model = create_model(
            cfg.model.arch,
            num_classes=k,
            in_channels=ch,
            input_size=size,
            width=cfg.model.width,
            dropout=cfg.model.dropout,
        ).to(self.device)
        init_classifier(self.model, cfg.model.head_std)
        self.precision = resolve_precision(cfg.precision, self.device, cfg.amp)
        self.memory_format = memory_format(self.device, self.precision)
        self.model = self.model.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self.ema = self._make_ema(cfg.optim.ema)
        self.distiller = Distiller.from_config(cfg.distill, dataset.labels, size, ch, self.device, self.precision,
                                               cfg.threads)
        self.optimizer = self._make_optimizer()
        self.schedule = LRSchedule(cfg.optim, cfg.epochs)
        self.augment = BatchAugment(cfg.augment)
        self.class_weight = self._class_weights(k)
        self._mean = torch.tensor(mean, device=self.device)
        self._std = torch.tensor(std, device=self.device)
        self.history: list[dict[str, float]] = []
        self.best_val_acc = -1.0
        self.start_epoch = 0
        self.warm_start: WarmStart | None = None

    # ----------------------------------------------------------------- setup
    def _make_optimizer(self) -> torch.optim.Optimizer:
        return make_optimizer(self.model, self.cfg.optim)

    def _make_ema(self, decay: float) -> AveragedModel | None:
        if not 0 <= decay < 1:
            raise ConfigError(f"optim.ema must be in [0, 1), got {decay!r}")
        if decay == 0:
            return None
        return AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @property
    def eval_model(self) -> torch.nn.Module:
        """The model that is evaluated and saved: the weight average when ``optim.ema`` is on."""
        return self.ema.module if self.ema is not None else self.model

    def _class_weights(self, k: int) -> torch.Tensor | None:
        if not self.cfg.optim.class_weights:
            return None
        if self.cfg.optim.class_weight_power < 0:
            raise ConfigError(f"optim.class_weight_power must be >= 0, got {self.cfg.optim.class_weight_power!r}")
        counts = torch.bincount(self.train.labels, minlength=k).float().clamp_min(1)
        w = (counts.sum() / (k * counts)) ** self.cfg.optim.class_weight_power
        return (w / w.mean()).to(self.device)

    # ---------------------------------------------------------------- resume
    def _resume(self) -> None:
        path = self.run_dir / "last.pt"
        ckpt = restore(path, self.cfg, self.model, self.optimizer, self.schedule)
        self.history = list(ckpt.history)
        self.best_val_acc = ckpt.best_metric
        self.start_epoch = ckpt.epoch
        self.meta = ckpt.meta
        extra = ckpt.extra or {}
        if self.distiller is not None:
            self.distiller.check_resumed(extra.get("teacher_sha256"), path)
        if is_snapshot(ckpt):  # compact: the raw weights and the average restart from the saved weights
            if self.ema is not None:
                self.ema.module.load_state_dict(ckpt.model_state)
                steps = extra["snapshot"].get("ema_steps") or 1
                self.ema.n_averaged.fill_(steps)
            log.info("resumed from the snapshot %s at epoch %d (best val acc %.4f): momentum restarts from zero"
                     " and the weight average from the snapshot's weights", path, ckpt.epoch, ckpt.best_metric)
            return
        if self.ema is not None:
            if "train_state" not in extra or "ema_state" not in extra:
                raise CheckpointError(f"{path} holds no weight average although optim.ema is on")
            self.model.load_state_dict(extra["train_state"])
            self.ema.load_state_dict(extra["ema_state"])
        log.info("resumed %s at epoch %d (best val acc %.4f)", path, ckpt.epoch, ckpt.best_metric)

    def _checkpoint(self, epoch: int) -> Checkpoint:
        return Checkpoint(
            config=self.cfg,
            meta=self.meta,
            model_state=_cpu_state(self.eval_model),
            epoch=epoch,
            history=list(self.history),
            best_metric=self.best_val_acc,
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.schedule.state_dict(),
            extra=self._extra(),
        )

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"params": count_parameters(self.model), "precision": self.precision}
        if self.ema is not None:  # the raw weights and the average's step count, to resume exactly
            extra["train_state"] = _cpu_state(self.model)
            extra["ema_state"] = _cpu_state(self.ema)
        if self.distiller is not None:
            extra["teacher_sha256"] = self.distiller.teacher.sha256
        if self.warm_start is not None:
            extra["init"] = self.warm_start.to_dict()
        return extra

    # ------------------------------------------------------------------ loop
    def _loss(self, logits: torch.Tensor, targets: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
        """Cross-entropy on the run's targets, mixed with the distillation term when a teacher is set."""
        smoothing = self.cfg.optim.label_smoothing
        loss = F.cross_entropy(logits.float(), targets, weight=self.class_weight, label_smoothing=smoothing)
        if self.distiller is None or teacher is None:
            return loss
        return self.distiller.loss(loss, logits, teacher)

    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        cfg, model, data = self.cfg, self.model, self.train
        model.train()
        gen = epoch_generator(cfg.seed, epoch)
        order = torch.randperm(len(data), generator=gen)
        nb = max(1, len(data) // cfg.batch_size)  # drop the ragged last batch (BN and mixing prefer full ones)
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(
            range(nb),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not self.progress,
            unit="batch",
            dynamic_ncols=True,
        )
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size] if nb > 1 else order
            x = data.x[idx].float().div_(255.0)
            x = self.augment(x, gen)
            y = data.targets[idx]
            x, y = self.augment.mix(x, y, gen)
            teacher = self.distiller.teacher(x) if self.distiller is not None else None  # the same images
            x = normalize_batch(x.to(self.device, non_blocking=True), self._mean, self._std)
            x = x.contiguous(memory_format=self.memory_format)
            y = y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = model(x)
            loss = self._loss(logits, y, teacher)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, batch {b}; lower optim.lr")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(model)
            n = len(idx)
            total_loss += loss.item() * n
            correct += int((logits.argmax(1).cpu() == data.labels[idx]).sum())
            seen += n
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        return total_loss / seen, correct / seen

    def _autocast(self) -> Any:
        return autocast(self.device, self.precision)

    @torch.no_grad()
    def evaluate_split(self, data: SplitTensors, batch_size: int = 512) -> tuple[float, float, torch.Tensor]:
        """(loss, accuracy, probabilities) of the current model on a split, no augmentation."""
        model = self.eval_model
        model.eval()
        probs = []
        for i in range(0, len(data), batch_size):
            x = normalize_batch(data.x[i : i + batch_size].to(self.device), self._mean, self._std)
            x = x.contiguous(memory_format=self.memory_format)
            with self._autocast():
                logits = model(x)
            probs.append(torch.softmax(logits.float(), 1).cpu())
        p = torch.cat(probs)
        loss = float(-(data.targets * p.clamp_min(1e-8).log()).sum(1).mean())
        acc = float((p.argmax(1) == data.labels).float().mean())
        return loss, acc, p

    def fit(self, resume: bool = False, time_limit_s: float | None = None) -> TrainResult:
        """Train until ``cfg.epochs``, early stopping, or ``time_limit_s`` (then resume later)."""
        open_run(self.run_dir, self.cfg, resume, self._resume)
        if self.start_epoch == 0 and self.cfg.model.init:  # a fresh run that starts from another run's weights
            self.warm_start = warm_start(self.model, self.cfg.model.init, self.cfg.model.arch, self.cfg.model.width,
                                         tuple(self.dataset.labels))
            if self.ema is not None:
                self.ema.module.load_state_dict(self.model.state_dict())
        log.info(
            "training %s (%d params) on %s: %d train / %d val images, device %s, %s",
            self.cfg.model.arch,
            count_parameters(self.model),
            self.dataset.name,
            len(self.train),
            len(self.val),
            self.device,
            self.precision,
        )
        stopped_early = run_epochs(self.start_epoch, self.cfg.epochs, self._run_epoch, self._patience_exhausted,
                                   time_limit_s)
        done = len(self.history)
        finished = stopped_early or done >= self.cfg.epochs
        best = max(self.history, key=lambda r: r["val_acc"]) if self.history else {"epoch": 0, "val_acc": math.nan}
        return TrainResult(self.run_dir, done, float(best["val_acc"]), int(best["epoch"]), stopped_early, finished)

    def _run_epoch(self, epoch: int) -> None:
        lr = self.schedule.lr_for(epoch)
        set_lr(self.optimizer, lr)
        t = time.monotonic()
        train_loss, train_acc = self._train_epoch(epoch)
        val_loss, val_acc, _ = self.evaluate_split(self.val)
        self.schedule.observe(val_loss)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": lr,
            "time_s": time.monotonic() - t,
        }
        self.history.append(row)
        improved = val_acc > self.best_val_acc
        if improved:
            self.best_val_acc = val_acc
        ckpt = self._checkpoint(epoch + 1)
        save_checkpoint(ckpt, self.run_dir / "last.pt")
        if improved:
            save_checkpoint(ckpt, self.run_dir / "best.pt")
        write_history(self.history, self.run_dir / "history.csv")
        plot_curves(self.history, self.run_dir / "curves.png", title=f"{self.cfg.model.arch} on {self.dataset.name}")
        log.info(
            "epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | lr %.4g | %.1fs",
            epoch + 1,
            self.cfg.epochs,
            train_loss,
            train_acc,
            val_loss,
            val_acc,
            " *" if improved else "",
            lr,
            row["time_s"],
        )

    def _patience_exhausted(self) -> bool:
        return patience_exhausted(self.history, "val_acc", self.cfg.early_stopping)


def init_classifier(model: torch.nn.Module, std: float) -> None:
    """Re-draw the last linear layer N(0, ``std``) with zero bias (``std`` 0: leave the architecture's init).

    Small classifier weights make the first logits near zero, so the first epoch starts from a uniform
    prediction (loss ln K) instead of large random logits that it must first unlearn.
    """
    if not 0 <= std < 1:
        raise ConfigError(f"model.head_std must be in [0, 1), got {std!r}")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if std == 0 or not linears:
        return
    torch.nn.init.normal_(linears[-1].weight, 0.0, std)
    torch.nn.init.zeros_(linears[-1].bias)


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s state (contiguous, whatever the training memory format)."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}

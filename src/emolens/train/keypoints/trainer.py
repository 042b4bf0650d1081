"""The keypoint training loop: one :class:`KeypointTrainer` per run folder.

The run folder is the classification trainer's: ``config.yaml``, ``last.pt`` after every epoch,
``best.pt`` (lowest validation NME), ``history.csv`` (epoch, train/val loss, train/val NME,
validation mean pixel error, learning rate, seconds), ``curves.png``; at the end
:func:`evaluate_keypoint_run` adds ``metrics.json`` and ``predictions.png`` for the test split.
The training loss is the Wing loss on the points (the validation loss too), plus, for heatmap
models, a regulariser that keeps each heatmap one Gaussian-like peak (:data:`HEATMAP_WEIGHT`).
Checkpoints use :mod:`emolens.train.checkpoint` (``best_metric`` holds the best validation NME),
schedules :mod:`emolens.train.schedule`, and every epoch draws its randomness from
``(seed, epoch)`` like the classification trainer, so ``fit(resume=True)`` continues exactly.

A keypoint model for ``P`` points is a registry architecture built with ``num_classes = 2 * P``;
its :class:`~emolens.modelmeta.ModelMeta` has ``task="keypoints"``, ``labels`` = the point names
and, in ``extra``, the mirror permutation (``flip``), the coordinate convention, the mean face of
the training split in unit coordinates (``mean_shape``) and ``framing``, how the training crops sat
around faces (:func:`framing_extra`), which serving uses to frame faces the same way.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ...config import TrainConfig
from ...data.keypoints import KeypointDataset
from ...errors import CheckpointError, InvalidInput
from ...evaluation.keypoints import format_table, keypoint_metrics, per_face_nme, plot_predictions
from ...inference.landmarks import fit_framing
from ...modelmeta import ModelMeta
from ..archs import count_parameters, create_model
from ..archs import keypoint_resnet as _register_keypoint_archs  # noqa: F401  (fills the registry)
from ..archs.keypoint_resnet import soft_argmax
from ..checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ..history import plot_curves, write_history
from ..loop import epoch_generator, open_run, patience_exhausted, restore, run_epochs, set_lr
from ..schedule import LRSchedule
from ..tensors import channel_stats, normalize_batch
from ..trainer import make_optimizer, resolve_device
from .augment import KeypointAugment
from .targets import KeypointTensors, heatmap_regulariser, keypoint_loss, keypoint_tensors, to_pixels

log = logging.getLogger("emolens.train.keypoints")

HEATMAP_WEIGHT = 1.0
"""Weight of the heatmap regulariser (:func:`~.targets.heatmap_regulariser`) in the training loss."""
HISTORY_COLUMNS = ("epoch", "train_loss", "train_nme", "val_loss", "val_nme", "val_px", "lr", "time_s")
COORDINATES = "unit: u = (x + 0.5) / width, v = (y + 0.5) / height (x, y pixel centres); output u0, v0, u1, v1, ..."


@dataclass(frozen=True)
class KeypointTrainResult:
    run_dir: Path
    epochs_done: int
    best_val_nme: float
    best_epoch: int
    stopped_early: bool
    finished: bool  # False when a time limit ended the run before its last epoch


def build_keypoint_model(cfg: TrainConfig, meta: ModelMeta, state: dict[str, Any] | None = None) -> nn.Module:
    """The architecture of ``cfg`` with ``2 * len(meta.labels)`` outputs (and ``state`` loaded), in eval mode."""
    model = create_model(cfg.model.arch, num_classes=2 * meta.num_classes, in_channels=meta.channels,
                         input_size=meta.input_size[0], width=cfg.model.width, dropout=cfg.model.dropout)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint weights do not fit architecture {cfg.model.arch!r}: {e}") from e
    return model.eval()


def framing_extra(unit_points: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """``{"framing": weights}`` learned from training faces' unit points (see
    :func:`~emolens.inference.landmarks.fit_framing`), or ``{}`` with too few complete faces."""
    try:
        return {"framing": fit_framing(unit_points, names)}
    except InvalidInput as e:
        log.warning("no framing model: %s", e)
        return {}


def load_keypoint_checkpoint(path: str | Path) -> tuple[Checkpoint, nn.Module]:
    """A keypoint checkpoint and its model (eval mode, CPU); CheckpointError for anything else."""
    ckpt = load_checkpoint(path)
    if ckpt.meta.task != "keypoints":
        raise CheckpointError(f"{path} holds a {ckpt.meta.task!r} model, not a keypoint model")
    return ckpt, build_keypoint_model(ckpt.config, ckpt.meta, ckpt.model_state)


@torch.no_grad()
def predict_unit(model: nn.Module, meta: ModelMeta, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """uint8 ``(N, C, S, S)`` -> ``(N, P, 2)`` unit coordinates (no augmentation)."""
    model.eval()
    mean, std = torch.tensor(meta.mean), torch.tensor(meta.std)
    dev = next(model.parameters()).device
    out = [model(normalize_batch(x[i:i + batch_size], mean, std).to(dev)).float().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).reshape(len(x), -1, 2).numpy()


class KeypointTrainer:
    """Trains ``cfg.model.arch`` as a keypoint regressor on a :class:`KeypointDataset` into ``cfg.out``."""

    def __init__(self, cfg: TrainConfig, dataset: KeypointDataset, progress: bool = True) -> None:
        self.cfg, self.dataset, self.progress = cfg, dataset, progress
        self.run_dir = Path(cfg.out)
        self.device = resolve_device(cfg.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.train = keypoint_tensors(dataset.split("train"))
        self.val = keypoint_tensors(dataset.split("val"))
        self.meta = self._make_meta()
        torch.manual_seed(cfg.seed)
        self.model = build_keypoint_model(cfg, self.meta).to(self.device)
        self.optimizer = make_optimizer(self.model, cfg.optim)
        self.schedule = LRSchedule(cfg.optim, cfg.epochs)
        self.augment = KeypointAugment(cfg.augment, dataset.flip)
        self._mean = torch.tensor(self.meta.mean, device=self.device)
        self._std = torch.tensor(self.meta.std, device=self.device)
        self.history: list[dict[str, float]] = []
        self.best_val_nme = math.inf
        self.start_epoch = 0

    def _make_meta(self) -> ModelMeta:
        mean, std = channel_stats(self.train.x)
        size = self.train.size
        shape = np.nanmean(self.train.points.numpy(), axis=0)
        extra = framing_extra(self.train.points.numpy(), self.dataset.points)
        return ModelMeta(
            labels=self.dataset.points, input_size=(size, size), channels=int(self.train.x.shape[1]),
            mean=mean, std=std, architecture=self.cfg.model.arch, dataset=self.dataset.name, task="keypoints",
            extra={"coordinates": COORDINATES, "flip": list(self.dataset.flip), "train_size": len(self.train),
                   "mean_shape": [[round(float(u), 5), round(float(v), 5)] for u, v in shape],
                   "test_split": self.cfg.data.test_split, **extra},
        )

    # ---------------------------------------------------------------- resume
    def _resume(self) -> None:
        path = self.run_dir / "last.pt"
        ckpt = restore(path, self.cfg, self.model, self.optimizer, self.schedule)
        self.history, self.best_val_nme = list(ckpt.history), ckpt.best_metric
        self.start_epoch, self.meta = ckpt.epoch, ckpt.meta
        log.info("resumed %s at epoch %d (best val NME %.4f)", path, ckpt.epoch, ckpt.best_metric)

    def _checkpoint(self, epoch: int) -> Checkpoint:
        return Checkpoint(
            config=self.cfg, meta=self.meta,
            model_state={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            epoch=epoch, history=list(self.history), best_metric=self.best_val_nme,
            optimizer_state=self.optimizer.state_dict(), scheduler_state=self.schedule.state_dict(),
            extra={"params": count_parameters(self.model), "metric": "val_nme (lower is better)"},
        )

    # ------------------------------------------------------------------ loop
    def _nme(self, pred: np.ndarray, unit_true: np.ndarray) -> np.ndarray:
        size = self.train.size
        return per_face_nme(to_pixels(pred, size), to_pixels(unit_true, size), self.dataset.points)

    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        cfg, data, size = self.cfg, self.train, self.train.size
        self.model.train()
        gen = epoch_generator(cfg.seed, epoch)
        order = torch.randperm(len(data), generator=gen)
        nb = max(1, len(data) // cfg.batch_size)  # drop the ragged last batch (BN prefers full ones)
        total, nme_sum, seen = 0.0, 0.0, 0
        bar = tqdm(range(nb), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not self.progress,
                   unit="batch", dynamic_ncols=True)
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size] if nb > 1 else order
            x, pts = self.augment(data.x[idx].float().div_(255.0), data.points[idx], gen)
            x = normalize_batch(x.to(self.device), self._mean, self._std)
            pred, loss = self._loss(x, pts.to(self.device), size)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, batch {b}; lower optim.lr")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            n = len(idx)
            total += loss.item() * n
            nme_sum += float(np.nansum(self._nme(pred.detach().cpu().reshape(n, -1, 2).numpy(), pts.numpy())))
            seen += n
            bar.set_postfix(loss=f"{total / seen:.3f}", nme=f"{nme_sum / seen:.4f}")
        return total / seen, nme_sum / seen

    def _loss(self, x: torch.Tensor, pts: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(predictions, training loss): the Wing loss on the points, plus, for heatmap models
        (those with ``heatmap_logits``), :data:`HEATMAP_WEIGHT` times the heatmap regulariser."""
        heatmaps = getattr(self.model, "heatmap_logits", None)
        if heatmaps is None:
            pred = self.model(x)
            return pred, keypoint_loss(pred, pts, size)
        maps = heatmaps(x)
        pred = soft_argmax(maps).flatten(1)[:, : 2 * pts.shape[1]]
        return pred, keypoint_loss(pred, pts, size) + HEATMAP_WEIGHT * heatmap_regulariser(maps, pts)

    @torch.no_grad()
    def evaluate_split(self, data: KeypointTensors) -> tuple[float, dict[str, Any]]:
        """(loss, :func:`~emolens.evaluation.keypoints.keypoint_metrics` in model pixels) on a split."""
        pred = predict_unit(self.model, self.meta, data.x)
        loss = float(keypoint_loss(torch.from_numpy(pred).reshape(len(pred), -1), data.points, data.size))
        size = data.size
        return loss, keypoint_metrics(to_pixels(pred, size), to_pixels(data.points.numpy(), size), self.dataset.points)

    def fit(self, resume: bool = False, time_limit_s: float | None = None) -> KeypointTrainResult:
        """Train until ``cfg.epochs``, early stopping, or ``time_limit_s`` (then resume later)."""
        open_run(self.run_dir, self.cfg, resume, self._resume)
        log.info("training %s (%d params) on %s: %d train / %d val faces, %d points, device %s",
                 self.cfg.model.arch, count_parameters(self.model), self.dataset.name, len(self.train),
                 len(self.val), len(self.dataset.points), self.device)
        stopped_early = run_epochs(self.start_epoch, self.cfg.epochs, self._run_epoch, self._patience_exhausted,
                                   time_limit_s)
        done = len(self.history)
        best = min(self.history, key=lambda r: r["val_nme"]) if self.history else {"epoch": 0, "val_nme": math.nan}
        return KeypointTrainResult(self.run_dir, done, float(best["val_nme"]), int(best["epoch"]), stopped_early,
                                   stopped_early or done >= self.cfg.epochs)

    def _run_epoch(self, epoch: int) -> None:
        lr = self.schedule.lr_for(epoch)
        set_lr(self.optimizer, lr)
        t = time.monotonic()
        train_loss, train_nme = self._train_epoch(epoch)
        val_loss, val = self.evaluate_split(self.val)
        self.schedule.observe(val_loss)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_nme": train_nme, "val_loss": val_loss,
               "val_nme": float(val["nme"]), "val_px": float(val["mean_px"]), "lr": lr,
               "time_s": time.monotonic() - t}
        self.history.append(row)
        improved = row["val_nme"] < self.best_val_nme
        if improved:
            self.best_val_nme = row["val_nme"]
        ckpt = self._checkpoint(epoch + 1)
        save_checkpoint(ckpt, self.run_dir / "last.pt")
        if improved:
            save_checkpoint(ckpt, self.run_dir / "best.pt")
        write_history(self.history, self.run_dir / "history.csv", HISTORY_COLUMNS)
        plot_curves(self.history, self.run_dir / "curves.png", title=f"{self.cfg.model.arch} on {self.dataset.name}",
                    metric="nme", metric_label="NME (inter-ocular)", higher_is_better=False)
        log.info("epoch %d/%d  train loss %.4f nme %.4f | val loss %.4f nme %.4f (%.3f px)%s | lr %.4g | %.1fs",
                 epoch + 1, self.cfg.epochs, train_loss, train_nme, val_loss, row["val_nme"], row["val_px"],
                 " *" if improved else "", lr, row["time_s"])

    def _patience_exhausted(self) -> bool:
        return patience_exhausted(self.history, "val_nme", self.cfg.early_stopping, higher_is_better=False)


def evaluate_keypoint_run(run_dir: str | Path, dataset: KeypointDataset, split: str = "test") -> dict[str, Any]:
    """Score the run's ``best.pt`` on ``split``: writes ``metrics.json`` and ``predictions.png``; returns the metrics.

    Errors are in pixels of the model input (the dataset's images at ``data.image_size``).
    """
    run_dir = Path(run_dir)
    ckpt, model = load_keypoint_checkpoint(run_dir / "best.pt")
    data = keypoint_tensors(dataset.split(split))
    pred = to_pixels(predict_unit(model, ckpt.meta, data.x), data.size)
    true = to_pixels(data.points.numpy(), data.size)
    metrics = keypoint_metrics(pred, true, dataset.points)
    metrics.update({"split": split, "dataset": dataset.name, "test_split": ckpt.config.data.test_split,
                    "image_size": data.size, "model": str(run_dir / "best.pt")})
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    images = dataset.split(split).images
    plot_predictions(images, pred, true, run_dir / "predictions.png",
                     title=f"{split}: NME {metrics.get('nme', float('nan')):.4f}, {metrics['mean_px']:.2f} px")
    log.info("%s", format_table(metrics))
    return metrics

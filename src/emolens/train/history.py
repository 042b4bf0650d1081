"""The run folder's human-facing records: ``history.csv`` and ``curves.png``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time_s")


def write_history(history: list[dict[str, float]], path: str | Path, columns: Sequence[str] = COLUMNS) -> None:
    """One row per epoch with ``columns`` (keys of a row outside them are left out)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in columns if k in row})


def read_history(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def plot_curves(history: list[dict[str, float]], path: str | Path, title: str = "", metric: str = "acc",
                metric_label: str = "accuracy", higher_is_better: bool = True) -> None:
    """Loss and a metric (``train_<metric>``, ``val_<metric>``; accuracy by default) per epoch for
    train and validation, plus the learning rate; the best validation epoch is marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for key, ax, name in (("loss", axes[0], "loss"), (metric, axes[1], metric_label)):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], label="train")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if history:
        pick = max if higher_is_better else min
        best = pick(history, key=lambda r: r[f"val_{metric}"])
        axes[1].axvline(best["epoch"], color="gray", ls="--", lw=0.8)
        axes[1].set_title(f"best val {metric} {best[f'val_{metric}']:.4f} @ epoch {int(best['epoch'])}")
    axes[2].plot(epochs, [r["lr"] for r in history])
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("learning rate")
    axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Evaluation figures written as PNG files: confusion matrix, one-vs-rest ROC, reliability diagram.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no global backend
switch), so they work headless and in threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from ..errors import InvalidInput
from .metrics import ECE_BINS, reliability_bins

DPI = 110


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _heatmap(ax: Axes, values: np.ndarray, text: list[list[str]], labels: Sequence[str], title: str) -> None:
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=max(float(values.max()), 1e-9))
    k = len(labels)
    ax.set_xticks(range(k), labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = values.max() / 2 if values.max() > 0 else 1
    for i in range(k):
        for j in range(k):
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=8,
                    color="white" if values[i, j] > threshold else "black")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def plot_confusion_matrix(cm: Sequence[Sequence[int]] | np.ndarray, labels: Sequence[str], path: str | Path,
                          title: str = "") -> Path:
    """Two panels: counts, and row-normalised percentages (each true class sums to 100%)."""
    m = np.asarray(cm, dtype=np.int64)
    if m.ndim != 2 or m.shape != (len(labels), len(labels)):
        raise InvalidInput(f"confusion matrix shape {m.shape} does not fit {len(labels)} labels")
    rows = m.sum(axis=1, keepdims=True)
    pct = np.divide(m * 100.0, rows, out=np.zeros(m.shape, dtype=np.float64), where=rows > 0)
    size = max(5.0, 0.75 * len(labels) + 2.5)
    fig = Figure(figsize=(2 * size + 1, size), layout="constrained")
    ax_counts, ax_pct = fig.subplots(1, 2)
    _heatmap(ax_counts, m.astype(np.float64), [[str(v) for v in row] for row in m], labels, "counts")
    _heatmap(ax_pct, pct, [[f"{v:.1f}" for v in row] for row in pct], labels, "% of true class (row)")
    if title:
        fig.suptitle(title)
    return _save(fig, Path(path))


def plot_roc(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str], path: str | Path,
             auc: dict[str, float | None] | None = None, title: str = "") -> Path:
    """One-vs-rest ROC curve per class with its AUC in the legend (classes absent from ``y_true``
    are listed as "n/a"). ``auc`` may pass precomputed values (label -> AUC) to avoid recomputing."""
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(labels) or len(y) != len(p):
        raise InvalidInput(f"probs {p.shape} / y_true {y.shape} do not fit {len(labels)} labels")
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    for k, name in enumerate(labels):
        pos = y == k
        if not 0 < pos.sum() < len(y):
            ax.plot([], [], label=f"{name} (AUC n/a)")
            continue
        fpr, tpr, _ = roc_curve(pos, p[:, k])
        value = auc.get(name) if auc else None
        value = float(np.trapezoid(tpr, fpr)) if value is None else value
        ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC {value:.3f})")
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "ROC, one class vs rest")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_reliability(y_true: np.ndarray, probs: np.ndarray, path: str | Path, n_bins: int = ECE_BINS,
                     ece: float | None = None) -> Path:
    """Reliability diagram: accuracy against mean confidence per confidence bin, with bin counts."""
    bins = reliability_bins(y_true, probs, n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    acc = np.nan_to_num(np.asarray(bins["accuracy"]), nan=0.0)
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    ax.bar(centers, acc, width=1 / n_bins, edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=0.8, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("reliability" + (f" (ECE {ece:.3f})" if ece is not None else ""))
    ax.legend(loc="upper left", fontsize=8)
    ax_n.bar(centers, bins["count"], width=1 / n_bins, color="gray")
    ax_n.set_xlabel("confidence (max probability)")
    ax_n.set_ylabel("images")
    ax_n.set_xlim(0, 1)
    return _save(fig, Path(path))


def write_plots(y_true: np.ndarray, probs: np.ndarray, metrics: Mapping[str, Any], out_dir: str | Path,
                prefix: str = "", reliability: bool = True) -> dict[str, Path]:
    """Write ``confusion_matrix.png``, ``roc.png`` and (optionally) ``reliability.png`` into ``out_dir``
    from ``metrics`` (as made by :func:`~emolens.evaluation.metrics.compute_metrics`). ``prefix`` is put
    before each file name (e.g. ``tta_``). Returns name -> path."""
    out = Path(out_dir)
    labels = [str(x) for x in metrics["labels"]]
    auc = metrics.get("roc_auc")
    paths = {
        "confusion_matrix": plot_confusion_matrix(
            metrics["confusion_matrix"], labels, out / f"{prefix}confusion_matrix.png",
            title=f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, n={metrics['n']}",
        ),
        "roc": plot_roc(y_true, probs, labels, out / f"{prefix}roc.png", auc=auc),
    }
    if reliability:
        ece = metrics.get("ece")
        paths["reliability"] = plot_reliability(
            y_true, probs, out / f"{prefix}reliability.png", ece=float(ece) if ece is not None else None
        )
    return paths

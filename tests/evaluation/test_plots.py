"""The evaluation figures are written as real, non-empty PNG files; bad shapes are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolens.errors import InvalidInput
from emolens.evaluation.metrics import compute_metrics
from emolens.evaluation.plots import plot_confusion_matrix, plot_reliability, plot_roc, write_plots

LABELS = ("anger", "happiness", "neutral", "contempt")


def _data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, size=60)  # "contempt" never occurs: its curve must be skipped, not crash
    logits = rng.normal(0, 1, size=(60, 4))
    logits[np.arange(60), y] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


def _png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        return im.size


def test_write_plots_writes_all_figures(tmp_path: Path, rng: np.random.Generator) -> None:
    y, p = _data(rng)
    m = compute_metrics(y, p, LABELS)
    paths = write_plots(y, p, m, tmp_path / "out")
    assert set(paths) == {"confusion_matrix", "roc", "reliability"}
    assert {q.name for q in paths.values()} == {"confusion_matrix.png", "roc.png", "reliability.png"}
    for q in paths.values():
        w, h = _png_size(q)
        assert w > 300 and h > 300


def test_prefix_and_no_reliability(tmp_path: Path, rng: np.random.Generator) -> None:
    y, p = _data(rng)
    paths = write_plots(y, p, compute_metrics(y, p, LABELS), tmp_path, prefix="tta_", reliability=False)
    assert sorted(q.name for q in paths.values()) == ["tta_confusion_matrix.png", "tta_roc.png"]


def test_confusion_matrix_has_two_panels(tmp_path: Path) -> None:
    cm = [[5, 1], [0, 0]]  # a class with no true samples: its percentage row stays 0, no division error
    w, h = _png_size(plot_confusion_matrix(cm, ["a", "b"], tmp_path / "cm.png"))
    assert w > 1.5 * h  # counts and row-normalised % side by side


def test_individual_plots(tmp_path: Path, rng: np.random.Generator) -> None:
    y, p = _data(rng)
    assert plot_roc(y, p, LABELS, tmp_path / "r.png").stat().st_size > 1000
    assert plot_reliability(y, p, tmp_path / "rel.png", ece=0.05).stat().st_size > 1000


def test_bad_shapes_are_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(InvalidInput, match="does not fit 3 labels"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "x.png")
    y, p = _data(rng)
    with pytest.raises(InvalidInput, match="do not fit"):
        plot_roc(y, p, ("a", "b"), tmp_path / "y.png")
    assert not list(tmp_path.iterdir())

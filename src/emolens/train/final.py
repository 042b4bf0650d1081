"""End of a run: the best checkpoint evaluated on the held-out test split (``metrics.json`` and plots)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.base import FaceDataset
from ..evaluation.metrics import compute_metrics
from ..evaluation.plots import write_plots
from .checkpoint import load_checkpoint
from .tensors import normalize_batch, split_tensors


@torch.no_grad()
def predict_probs(run_dir: Path, dataset: FaceDataset, split: str, batch_size: int = 512) -> np.ndarray:
    ckpt = load_checkpoint(run_dir / "best.pt")
    model, meta = ckpt.build_model(), ckpt.meta
    data = split_tensors(dataset.split(split), meta.num_classes, meta.input_size[0], meta.channels)
    mean, std = torch.tensor(meta.mean), torch.tensor(meta.std)
    out = [
        torch.softmax(model(normalize_batch(data.x[i : i + batch_size], mean, std)), 1)
        for i in range(0, len(data), batch_size)
    ]
    return torch.cat(out).numpy()


def evaluate_run(run_dir: str | Path, dataset: FaceDataset, split: str = "test") -> dict[str, Any]:
    """Write ``metrics.json``, ``confusion_matrix.png``, ``roc.png`` for the run's best model."""
    run_dir = Path(run_dir)
    probs = predict_probs(run_dir, dataset, split)
    y = dataset.split(split).labels
    metrics = compute_metrics(y, probs, dataset.labels)
    metrics.update({"split": split, "dataset": dataset.name, "model": str(run_dir / "best.pt")})
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    write_plots(y, probs, metrics, run_dir)
    return metrics

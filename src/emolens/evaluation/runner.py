"""Evaluate a model on a dataset split: the core behind ``emolens evaluate`` (and export's metrics).

:func:`load_dataset_for_model` loads a dataset at the model's input size and channels;
:func:`select_split` checks that its labels are the model's and puts the targets in the model's
output order; :func:`evaluate_arrays` predicts
(optionally with flip test-time augmentation) and scores; :func:`evaluate_model` does it all and
writes ``metrics.json`` and the figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from ..data.base import FaceDataset
from ..errors import InvalidInput
from ..modelmeta import ModelMeta
from .metrics import compute_metrics
from .plots import write_plots
from .predict import Predictor, describe, load_predictor, predict_batched, predict_with_tta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSplit:
    """Images and targets of one split, targets already in the model's label order."""

    dataset: str
    split: str
    images: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]
    excluded_train_duplicates: int | None = None  # None when the check was not asked for


@dataclass(frozen=True)
class EvalResult:
    """Probabilities and metrics; the ``tta_*`` fields are set when flip TTA ran."""

    probs: np.ndarray
    metrics: dict[str, Any]
    tta_probs: np.ndarray | None = None
    tta_metrics: dict[str, Any] | None = None


def align_labels(dataset_labels: Sequence[str], model_labels: Sequence[str], y: np.ndarray,
                 dataset: str = "dataset", model: str = "model") -> np.ndarray:
    """Re-index ``y`` (indices into ``dataset_labels``) into ``model_labels`` order.

    The two must hold the same set of labels (order may differ); otherwise InvalidInput names both.
    """
    ds, md = tuple(dataset_labels), tuple(model_labels)
    if set(ds) != set(md) or len(ds) != len(md):
        only_ds = sorted(set(ds) - set(md))
        only_md = sorted(set(md) - set(ds))
        raise InvalidInput(
            f"label sets differ: {dataset} has {list(ds)}, {model} has {list(md)}"
            + (f"; only in the data: {only_ds}" if only_ds else "")
            + (f"; only in the model: {only_md}" if only_md else "")
        )
    mapping = np.array([md.index(name) for name in ds], dtype=np.int64)
    return mapping[np.asarray(y, dtype=np.int64)]


def image_hashes(images: np.ndarray) -> list[bytes]:
    """A content hash per image (shape and pixels), for finding pixel-identical duplicates."""
    shape = repr(images.shape[1:]).encode()
    return [hashlib.blake2b(shape + np.ascontiguousarray(img).tobytes(), digest_size=16).digest()
            for img in images]


def train_duplicate_mask(images: np.ndarray, train_images: np.ndarray) -> np.ndarray:
    """Boolean ``(N,)``: True where ``images[i]`` is pixel-identical to some training image."""
    seen = set(image_hashes(train_images)) if len(train_images) else set()
    return np.array([h in seen for h in image_hashes(images)], dtype=bool)


def load_dataset_for_model(meta: ModelMeta, dataset: str, path: str | Path, labels_path: str = "",
                           seed: int = 0, base: DataConfig | None = None) -> FaceDataset:
    """Load a dataset at the model's input size and channels (all training images: ``limit`` is reset).

    ``base`` supplies the other data settings (e.g. the checkpoint's, so a validation split carved
    from train is the same one). Raises DatasetError / ConfigError from the loader.
    """
    from ..data import load_dataset

    cfg = replace(base or DataConfig(), dataset=dataset, path=str(path), labels_path=labels_path,
                  image_size=int(meta.input_size[0]), channels=meta.channels, limit=0)
    return load_dataset(cfg, seed=seed)


def select_split(ds: FaceDataset, meta: ModelMeta, split: str = "test", source: str = "",
                 exclude_train_duplicates: bool = False) -> EvalSplit:
    """One split of ``ds`` with targets in the model's label order; with ``exclude_train_duplicates``
    the rows pixel-identical to a train image are dropped (and counted).

    Raises InvalidInput when the label sets differ (naming both) or nothing is left to evaluate.
    """
    part = ds.split(split)
    y = align_labels(ds.labels, meta.labels, part.labels, dataset=f"dataset {ds.name}{source}",
                     model=f"the model ({meta.architecture}, trained on {meta.dataset})")
    images, excluded = part.images, None
    if exclude_train_duplicates:
        train = ds.splits.get("train")
        if part.name == "train" or train is None:
            raise InvalidInput("excluding train duplicates needs a dataset with a train split and another "
                               f"split to evaluate (got split {part.name!r})")
        dup = train_duplicate_mask(images, train.images)
        excluded = int(dup.sum())
        images, y = images[~dup], y[~dup]
        log.info("excluded %d %s rows pixel-identical to a train image", excluded, part.name)
    if len(images) == 0:
        raise InvalidInput(f"split {part.name!r} of {ds.name} has no images left to evaluate")
    return EvalSplit(ds.name, part.name, images, y, tuple(meta.labels), excluded)


def evaluate_arrays(predictor: Predictor, images: np.ndarray, y: np.ndarray, batch_size: int = 256,
                    tta: bool = False) -> EvalResult:
    """Predict ``images`` and score against ``y`` (model label order). With ``tta`` also the
    mean of plain and mirrored predictions, scored separately."""
    labels = predictor.meta.labels
    if tta:
        probs, tta_probs = predict_with_tta(predictor, images, batch_size)
        return EvalResult(probs, compute_metrics(y, probs, labels), tta_probs,
                          compute_metrics(y, tta_probs, labels))
    probs = predict_batched(predictor, images, batch_size)
    return EvalResult(probs, compute_metrics(y, probs, labels))


def evaluate_model(model: str | Path | Predictor, dataset: str, data_path: str | Path, out_dir: str | Path,
                   split: str = "test", labels_path: str = "", tta: bool = False, batch_size: int = 256,
                   exclude_train_duplicates: bool = False, device: str = "cpu",
                   ferplus_rows: str = "majority") -> dict[str, Any]:
    """Evaluate a model file (or predictor) on a split; write ``metrics.json``, ``confusion_matrix.png``,
    ``roc.png`` and ``reliability.png`` (plus ``tta_*`` figures with ``tta``) into ``out_dir``.

    ``ferplus_rows`` picks the FER+ val/test rows (:mod:`emolens.data.ferplus`): ``majority``
    (Microsoft's protocol) or ``plurality`` (ambiguous faces included).

    Returns the ``metrics.json`` content: :func:`compute_metrics` keys plus ``split``, ``dataset``,
    ``model`` (a description), ``excluded_train_duplicates`` when asked and a ``tta`` block.
    """
    predictor = model if isinstance(model, Predictor) else load_predictor(model, device=device)
    base = getattr(getattr(predictor, "checkpoint", None), "config", None)
    data_cfg = replace(base.data if base is not None else DataConfig(), ferplus_eval_rows=ferplus_rows)
    ds = load_dataset_for_model(predictor.meta, dataset, data_path, labels_path,
                                seed=base.seed if base is not None else 0, base=data_cfg)
    data = select_split(ds, predictor.meta, split, f" ({data_path})", exclude_train_duplicates)
    result = evaluate_arrays(predictor, data.images, data.y, batch_size, tta)
    report: dict[str, Any] = {**result.metrics, "split": data.split, "dataset": data.dataset,
                              "data_path": str(data_path), "model": describe(predictor)}
    if ds.name == "ferplus":
        report["ferplus_rows"] = ferplus_rows
    if data.excluded_train_duplicates is not None:
        report["excluded_train_duplicates"] = data.excluded_train_duplicates
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_plots(data.y, result.probs, result.metrics, out)
    if result.tta_metrics is not None and result.tta_probs is not None:
        report["tta"] = {"method": "mean of original and horizontally mirrored image", **result.tta_metrics}
        write_plots(data.y, result.tta_probs, result.tta_metrics, out, prefix="tta_")
    (out / "metrics.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report

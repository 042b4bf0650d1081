"""Classification metrics, calibration and temperature scaling: pure functions on numpy arrays.

No torch here: the same functions score a PyTorch checkpoint, an ONNX model or saved predictions.
``probs`` is always ``(N, K)`` with rows summing to 1 and columns in the model's label order;
``y_true`` holds indices into that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score

from ..errors import InvalidInput

ECE_BINS = 15
_EPS = 1e-12
_T_BOUNDS = (0.05, 20.0)


def _check(y_true: np.ndarray, probs: np.ndarray, n_labels: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(y int64 (N,), probs float64 (N, K))``."""
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise InvalidInput(f"probs must be (N, K) with N >= 1 and K >= 2, got shape {p.shape}")
    if y.ndim != 1 or len(y) != len(p):
        raise InvalidInput(f"y_true must be (N,) with N = {len(p)} (rows of probs), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise InvalidInput(f"y_true must hold class indices (integers), got dtype {y.dtype}")
        y = y.astype(np.int64)
    if n_labels is not None and p.shape[1] != n_labels:
        raise InvalidInput(f"probs has {p.shape[1]} columns but {n_labels} labels were given")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise InvalidInput(f"y_true holds class index {int(y.min() if y.min() < 0 else y.max())}, "
                           f"outside 0..{p.shape[1] - 1}")
    if not np.all(np.isfinite(p)):
        raise InvalidInput("probs holds NaN or infinite values")
    return y.astype(np.int64), p


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE: the sample-weighted mean gap between confidence (max prob) and accuracy over ``n_bins``
    equal-width confidence bins on (0, 1]."""
    y, p = _check(y_true, probs)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # Bin b holds confidences in (b/n, (b+1)/n]; a confidence of exactly 0 goes to the first bin.
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, list[float]]:
    """Per-bin mean confidence, accuracy and count (for reliability diagrams); empty bins hold NaN."""
    y, p = _check(y_true, probs)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(n_bins):
        mask = bins == b
        out["count"].append(float(mask.sum()))
        out["confidence"].append(float(conf[mask].mean()) if mask.any() else float("nan"))
        out["accuracy"].append(float(correct[mask].mean()) if mask.any() else float("nan"))
    return out


def negative_log_likelihood(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean ``-log p[y]`` (probabilities clipped at 1e-12 so a confident miss stays finite)."""
    y, p = _check(y_true, probs)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1.0)).mean())


def _roc_auc(y: np.ndarray, p: np.ndarray, labels: Sequence[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k, name in enumerate(labels):
        pos = y == k
        # One-vs-rest AUC needs both positives and negatives.
        out[name] = float(roc_auc_score(pos, p[:, k])) if 0 < pos.sum() < len(y) else None
    return out


def compute_metrics(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """All evaluation figures for predictions ``probs`` (N, K) against class indices ``y_true`` (N,).

    Keys: ``accuracy``, ``macro_f1`` (mean F1 over classes present in ``y_true`` or predicted),
    ``weighted_f1`` (by support), ``per_class`` (label -> precision, recall, f1, support; 0 where
    undefined), ``confusion_matrix`` (list of lists, rows = true class, columns = predicted),
    ``labels``, ``roc_auc`` (label -> one-vs-rest AUC, None where a class is absent or is every
    sample), ``n``, ``ece`` (15 bins) and ``nll``. Values are plain Python types (JSON-ready).
    Raises InvalidInput on mismatched shapes, out-of-range indices or non-finite probabilities.
    """
    labels = tuple(str(x) for x in labels)
    y, p = _check(y_true, probs, len(labels))
    k_all = list(range(len(labels)))
    pred = p.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=k_all, zero_division=0)
    per_class = {
        name: {"precision": float(prec[k]), "recall": float(rec[k]), "f1": float(f1[k]),
               "support": int(support[k])}
        for k, name in enumerate(labels)
    }
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, labels=k_all, average="weighted", zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y, pred, labels=k_all).astype(int).tolist(),
        "labels": list(labels),
        "roc_auc": _roc_auc(y, p, labels),
        "n": len(y),
        "ece": expected_calibration_error(y, p),
        "nll": negative_log_likelihood(y, p),
    }


def _as_logits(logits_or_probs: np.ndarray, kind: str) -> np.ndarray:
    x = np.asarray(logits_or_probs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise InvalidInput(f"expected an (N, K) array of logits or probabilities, got shape {x.shape}")
    if kind == "auto":
        looks_probs = bool(np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0, atol=1e-4))
        kind = "probs" if looks_probs else "logits"
    if kind == "probs":
        # log p differs from the logits by a per-row constant, which softmax ignores.
        return np.log(np.clip(x, _EPS, 1.0))
    if kind == "logits":
        return x
    raise InvalidInput(f"kind must be 'auto', 'logits' or 'probs', got {kind!r}")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def apply_temperature(logits_or_probs: np.ndarray, temperature: float, kind: str = "auto") -> np.ndarray:
    """Probabilities ``softmax(logits / T)``. ``kind`` says what the input is (``auto`` treats
    non-negative rows summing to 1 as probabilities). T > 1 softens, T < 1 sharpens; argmax is kept."""
    if not temperature > 0:
        raise InvalidInput(f"temperature must be positive, got {temperature}")
    return _softmax(_as_logits(logits_or_probs, kind) / float(temperature))


def fit_temperature(logits_or_probs: np.ndarray, y_true: np.ndarray, kind: str = "auto") -> float:
    """The temperature T in [0.05, 20] minimising the NLL of ``softmax(logits / T)`` on ``y_true``.

    Fit it on a validation split, never on the split you report. Searches log T (bounded Brent).
    """
    z = _as_logits(logits_or_probs, kind)
    y, _ = _check(y_true, _softmax(z))
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        return float(-(s[rows, y] - np.log(np.exp(s).sum(axis=1))).mean())

    lo, hi = np.log(_T_BOUNDS[0]), np.log(_T_BOUNDS[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))

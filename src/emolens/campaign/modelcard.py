"""What the report says about the model that made the numbers, read from the model's own metadata.

:func:`model_card` turns an ONNX model's :class:`~emolens.modelmeta.ModelMeta` (its embedded test
metrics: accuracy, macro-F1, per-class F1) into the caveats a reader needs: how accurate it is, which
emotions it barely recognises (per-class F1 below :data:`WEAK_F1`), and the licence of its training
data (FER2013 and FER+ images are research-only). Nothing is invented: a figure missing from the
metadata is missing from the card.
"""

from __future__ import annotations

import math
from typing import Any

from ..modelmeta import ModelMeta

WEAK_F1 = 0.4
"""An emotion whose test F1 is below this is "barely recognised" in the report."""
RESEARCH_ONLY = {"fer2013", "ferplus"}
LICENCE_NOTE = ("Trained on FER2013 images (Kaggle challenge terms, photos owned by their authors): "
                "research and non-commercial use only. Check the licence before using these results commercially; "
                "see MODEL_CARD.md.")


def _num(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def model_card(meta: ModelMeta | None) -> dict[str, Any] | None:
    """``{"dataset", "architecture", "split", "n", "accuracy", "macro_f1", "per_class_f1",
    "weak_classes", "calibrated", "licence"}`` from the model's metadata (None without metadata)."""
    if meta is None:
        return None
    m = meta.metrics or {}
    per_class = {str(k): f for k, v in (m.get("per_class_f1") or {}).items() if (f := _num(v)) is not None}
    dataset = str(meta.dataset or "").lower()
    return {
        "dataset": meta.dataset, "architecture": meta.architecture, "split": m.get("split"),
        "n": m.get("n"), "accuracy": _num(m.get("accuracy")), "macro_f1": _num(m.get("macro_f1")),
        "per_class_f1": per_class,
        "weak_classes": sorted((k for k, f in per_class.items() if f < WEAK_F1), key=lambda k: per_class[k]),
        "calibrated": _num((meta.extra or {}).get("temperature")) is not None,
        "licence": LICENCE_NOTE if dataset in RESEARCH_ONLY else None,
    }

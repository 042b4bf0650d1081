"""Keypoint metrics and a picture of predictions: numpy in, numbers and PNGs out (no torch).

Points are ``(N, P, 2)`` arrays of ``(x, y)`` pixels; NaN in the ground truth marks a missing point,
which is left out of every mean. :func:`keypoint_metrics` reports

- ``mean_px``: mean Euclidean distance between predicted and true points, in pixels;
- ``nme``: per face, the mean point error divided by the **inter-ocular distance**, the distance
  between the two eye centres (the definition of the dataset's README, also called inter-pupil);
  then averaged over faces. This is the headline number;
- ``nme_outer``: the same normalised by the distance between the outer eye corners (the 300-W
  convention, which gives smaller numbers);
- ``failure_rate``: share of faces whose NME exceeds 0.10;
- ``per_point``: ``{name: {"mean_px", "nme"}}``.

The eyes are found by name: Kaggle's ``left_eye_center``/``right_eye_center`` and
``*_eye_outer_corner``, or the iBUG-68 indices (mean of 36-41 and 42-47; corners 36 and 45).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput

FAILURE_NME = 0.10


def _eye_indices(names: Sequence[str]) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """(right-eye-centre idx, left-eye-centre idx, right outer corner, left outer corner) or None."""
    idx = {n: i for i, n in enumerate(names)}
    kaggle = ("right_eye_center", "left_eye_center", "right_eye_outer_corner", "left_eye_outer_corner")
    if all(k in idx for k in kaggle):
        return ([idx[kaggle[0]]], [idx[kaggle[1]]], [idx[kaggle[2]]], [idx[kaggle[3]]])
    if len(names) == 68 and all(n.startswith("ibug_") for n in names):
        return (list(range(36, 42)), list(range(42, 48)), [36], [45])
    return None


def _distance(points: np.ndarray, a: list[int], b: list[int]) -> np.ndarray:
    return np.linalg.norm(points[:, a].mean(axis=1) - points[:, b].mean(axis=1), axis=-1)


def interocular(points: np.ndarray, names: Sequence[str], outer: bool = False) -> np.ndarray:
    """Per face, the distance between the eye centres (``outer``: between the outer eye corners)."""
    eyes = _eye_indices(names)
    if eyes is None:
        raise InvalidInput(f"cannot find the eyes among the point names {list(names)[:6]}...")
    p = np.asarray(points, dtype=np.float64)
    return _distance(p, eyes[2], eyes[3]) if outer else _distance(p, eyes[0], eyes[1])


def _check(pred: np.ndarray, true: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 3 or p.shape[2] != 2 or p.shape[1] != len(names):
        raise InvalidInput(f"predictions {p.shape} and truth {t.shape} must both be (N, {len(names)}, 2)")
    if len(p) == 0:
        raise InvalidInput("no faces to score")
    if not np.isfinite(p).all():
        raise InvalidInput("predictions hold NaN or infinite values")
    return p, t


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``(N, P)`` Euclidean errors in pixels (NaN where the truth is missing)."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(true, np.float64), axis=-1)


def keypoint_metrics(pred: np.ndarray, true: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Mean pixel error, NME (eye centres and outer corners), failure rate and per-point errors.

    Faces whose true eyes are missing are left out of the NME figures (``n_nme`` says how many
    counted). Raises InvalidInput for mismatched shapes, an empty set or non-finite predictions.
    """
    p, t = _check(pred, true, names)
    err = point_errors(p, t)
    out: dict[str, Any] = {"n": len(p), "points": len(names), "mean_px": float(np.nanmean(err))}
    per_point: dict[str, dict[str, float]] = {
        n: {"mean_px": float(np.nanmean(err[:, i])) if np.isfinite(err[:, i]).any() else float("nan")}
        for i, n in enumerate(names)
    }
    if _eye_indices(names) is not None:
        for key, outer in (("nme", False), ("nme_outer", True)):
            iod = interocular(t, names, outer)
            ok = np.isfinite(iod) & (iod > 1e-6)
            if not ok.any():
                continue
            norm = err[ok] / iod[ok, None]
            face = np.nanmean(norm, axis=1)
            out[key] = float(np.nanmean(face))
            if key == "nme":
                out["n_nme"] = int(ok.sum())
                out["failure_rate"] = float(np.mean(face > FAILURE_NME))
                out["nme_median"] = float(np.nanmedian(face))
                for i, n in enumerate(names):
                    col = norm[:, i]
                    per_point[n]["nme"] = float(np.nanmean(col)) if np.isfinite(col).any() else float("nan")
    out["per_point"] = per_point
    return out


def per_face_nme(pred: np.ndarray, true: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``(N,)`` NME of each face (mean point error / eye-centre distance; NaN without eyes)."""
    p, t = _check(pred, true, names)
    iod = interocular(t, names)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(point_errors(p, t), axis=1) / np.where(iod > 1e-6, iod, np.nan)


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table: the headline figures, then one row per point."""
    lines = [f"faces {metrics['n']}  mean error {metrics['mean_px']:.3f} px"
             + (f"  NME {metrics['nme']:.4f} (outer corners {metrics.get('nme_outer', float('nan')):.4f})"
                f"  failures(>{FAILURE_NME:g}) {metrics['failure_rate']:.2%}" if "nme" in metrics else "")]
    lines.append(f"{'point':<26}{'mean px':>9}{'NME':>9}")
    for name, row in metrics["per_point"].items():
        lines.append(f"{name:<26}{row['mean_px']:>9.3f}{row.get('nme', float('nan')):>9.4f}")
    return "\n".join(lines)


def plot_predictions(images: np.ndarray, pred: np.ndarray, true: np.ndarray | None, path: str | Path,
                     *, columns: int = 6, max_faces: int = 24, title: str = "") -> Path:
    """A grid of faces with true points (green) and predictions (red, joined to the truth by a line).

    ``images`` uint8 ``(N, H, W)`` or ``(N, H, W, 3)``; points in their pixels. The worst faces are
    not picked on purpose: the first ``max_faces`` are drawn, so the picture is representative.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(images), max_faces)
    if n == 0:
        raise InvalidInput("no faces to draw")
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], cmap="gray" if images[k].ndim == 2 else None, vmin=0, vmax=255)
        if true is not None:
            for (px, py), (tx, ty) in zip(pred[k], true[k], strict=True):
                if np.isfinite(tx) and np.isfinite(ty):
                    ax.plot([px, tx], [py, ty], color="yellow", lw=0.6)
            ax.scatter(true[k][:, 0], true[k][:, 1], s=6, c="lime")
        ax.scatter(pred[k][:, 0], pred[k][:, 1], s=6, c="red")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out

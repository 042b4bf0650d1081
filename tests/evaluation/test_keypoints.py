"""Keypoint metrics (pixel error, NME by inter-ocular distance, per point) and the prediction picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emolens.data.keypoints import IBUG68, KAGGLE15
from emolens.errors import InvalidInput
from emolens.evaluation.keypoints import (
    format_table,
    interocular,
    keypoint_metrics,
    per_face_nme,
    plot_predictions,
)
from tests.train.keypoints.synthetic import FACE15

LE, RE = KAGGLE15.index("left_eye_center"), KAGGLE15.index("right_eye_center")


def faces(n: int = 4) -> np.ndarray:
    return np.repeat(FACE15[None].astype(np.float64), n, axis=0)


def test_interocular_distances() -> None:
    t = faces(2)
    assert interocular(t, KAGGLE15) == pytest.approx([28.0, 28.0])  # eye centres 62 and 34
    assert interocular(t, KAGGLE15, outer=True) == pytest.approx([42.0, 42.0])  # corners 69 and 27
    p68 = np.zeros((1, 68, 2))
    p68[0, 36:42, 0], p68[0, 42:48, 0], p68[0, 45, 0] = 10, 30, 34
    assert interocular(p68, IBUG68) == pytest.approx([(30 * 5 + 34) / 6 - 10])  # means of 36-41 and 42-47
    assert interocular(p68, IBUG68, outer=True) == pytest.approx([24.0])
    with pytest.raises(InvalidInput, match="eyes"):
        interocular(t[:, :3], ("a", "b", "c"))


def test_known_errors() -> None:
    t = faces()
    p = t.copy()
    p[:, :, 0] += 2.8  # every point 2.8 px off: NME = 2.8 / 28 = 0.1
    m = keypoint_metrics(p, t, KAGGLE15)
    assert m["mean_px"] == pytest.approx(2.8) and m["nme"] == pytest.approx(0.1)
    assert m["nme_outer"] == pytest.approx(2.8 / 42) and m["n"] == 4 and m["n_nme"] == 4
    assert m["per_point"]["nose_tip"] == {"mean_px": pytest.approx(2.8), "nme": pytest.approx(0.1)}
    assert per_face_nme(p, t, KAGGLE15) == pytest.approx([0.1] * 4)
    p[0, LE] += 28.0  # one face: one point 28 px further off -> its NME rises by 28/28/15
    m2 = keypoint_metrics(p, t, KAGGLE15)
    assert m2["failure_rate"] == pytest.approx(0.25)
    assert keypoint_metrics(t, t, KAGGLE15)["nme"] == 0.0


def test_missing_truth_is_left_out() -> None:
    t = faces(2)
    p = t + 1.0
    t[0, 5] = np.nan  # a missing corner: the face still counts, without that point
    m = keypoint_metrics(p, t, KAGGLE15)
    assert m["mean_px"] == pytest.approx(np.sqrt(2)) and m["n_nme"] == 2
    t[1, LE] = np.nan  # no eye: no NME for that face
    m = keypoint_metrics(p, t, KAGGLE15)
    assert m["n_nme"] == 1 and np.isfinite(m["nme"])


def test_bad_input() -> None:
    t = faces()
    with pytest.raises(InvalidInput, match="must both be"):
        keypoint_metrics(t[:, :5], t, KAGGLE15)
    with pytest.raises(InvalidInput, match="no faces"):
        keypoint_metrics(t[:0], t[:0], KAGGLE15)
    bad = t.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        keypoint_metrics(bad, t, KAGGLE15)


def test_table_and_picture(tmp_path: Path) -> None:
    t = faces(3)
    m = keypoint_metrics(t + 0.5, t, KAGGLE15)
    table = format_table(m)
    assert "NME 0.0253" in table and "mouth_center_bottom_lip" in table and len(table.splitlines()) == 17
    imgs = np.zeros((3, 96, 96), np.uint8)
    out = plot_predictions(imgs, t + 0.5, t, tmp_path / "pred.png", columns=2, title="x")
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    plot_predictions(np.zeros((1, 96, 96, 3), np.uint8), t[:1], None, tmp_path / "rgb.png")
    with pytest.raises(InvalidInput, match="no faces"):
        plot_predictions(imgs[:0], t[:0], None, tmp_path / "none.png")

"""emolens.imgops: the numpy image operations (the core install's, without OpenCV) against OpenCV's own."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emolens import imgops
from emolens.errors import MissingExtra

RNG = np.random.default_rng(0)


def _photo(h: int, w: int, channels: int = 3) -> np.ndarray:
    """Smooth content with edges, like a photo (pure noise would exaggerate interpolation differences)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0) + 40 * ((xx // 13 + yy // 9) % 2)
    img = np.stack([base + 10 * c for c in range(channels)], -1) + RNG.normal(0, 4, (h, w, channels))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[:, :, 0] if channels == 1 else img


def test_gray_is_opencvs_exactly():
    img = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert np.array_equal(imgops.np_rgb_to_gray(img), cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))


@pytest.mark.parametrize(("src", "dst", "interp", "cv_flag"), [
    ((480, 640), (240, 320), imgops.AREA, cv2.INTER_AREA),     # integer factor
    ((480, 640), (173, 231), imgops.AREA, cv2.INTER_AREA),     # fractional factor
    ((120, 90), (48, 48), imgops.AREA, cv2.INTER_AREA),        # a face crop to the model's size
    ((40, 30), (48, 48), imgops.LINEAR, cv2.INTER_LINEAR),     # enlarge
    ((96, 96), (61, 61), imgops.LINEAR, cv2.INTER_LINEAR),
    ((60, 45), (480, 360), imgops.CUBIC, cv2.INTER_CUBIC),     # the detector's small-image enlargement
])
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_agrees_with_opencv(src, dst, interp, cv_flag, channels):
    img = _photo(*src, channels=channels)
    ours = imgops.np_resize(img, (dst[1], dst[0]), interp)
    ref = cv2.resize(img, (dst[1], dst[0]), interpolation=cv_flag)
    assert ours.shape == ref.shape and ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.mean() < 0.6 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())


@pytest.mark.parametrize("angle", [0.0, 7.5, -23.0, 90.0])
@pytest.mark.parametrize("scale", [1.0, 0.4, 1.7])
def test_rotation_and_warp_agree_with_opencv(angle, scale):
    img = _photo(90, 120)
    m = imgops.rotation_matrix((55.5, 41.0), angle, scale)
    assert np.allclose(m, cv2.getRotationMatrix2D((55.5, 41.0), angle, scale))
    assert np.allclose(imgops.invert_affine(m), cv2.invertAffineTransform(m))
    m[0, 2] += 3.25
    ours, ref = imgops.np_warp_affine(img, m, (64, 72)), cv2.warpAffine(
        img, m, (64, 72), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert ours.shape == ref.shape and diff.mean() < 0.6 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())


def test_pad_replicate_is_opencvs():
    img = _photo(20, 30)
    ref = cv2.copyMakeBorder(img, 3, 0, 5, 2, cv2.BORDER_REPLICATE)
    assert np.array_equal(imgops.pad_replicate(img, 3, 0, 5, 2), ref)


def test_nms_keeps_what_opencv_keeps():
    boxes = np.concatenate([RNG.uniform(0, 200, (60, 2)), RNG.uniform(10, 60, (60, 2))], axis=1)
    scores = RNG.uniform(0, 1, 60)
    for score_thr, iou_thr in ((0.3, 0.3), (0.6, 0.5), (0.0, 0.1)):
        ref = np.asarray(cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), score_thr, iou_thr)).reshape(-1)
        assert sorted(imgops.nms(boxes, scores, score_thr, iou_thr).tolist()) == sorted(ref.tolist())
    assert imgops.nms(np.zeros((0, 4)), np.zeros(0), 0.5, 0.3).size == 0


def test_solve_pnp_finds_the_pose_opencv_finds():
    from emolens.inference.headpose import MODEL_POINTS, camera_matrix

    k = camera_matrix((480, 640))
    for rvec_true, tvec_true in (((0.1, -0.4, 0.05), (30.0, -20.0, 900.0)), ((-0.3, 0.6, -0.2), (-80, 40, 1500))):
        r = imgops.rodrigues(np.array(rvec_true))
        assert np.allclose(r, cv2.Rodrigues(np.array(rvec_true))[0])
        cam = MODEL_POINTS @ r.T + np.array(tvec_true)
        pts = np.stack([k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2], k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]], 1)
        pts = pts + RNG.normal(0, 0.8, pts.shape)  # detector noise
        guess_t = np.array([[0.0], [0.0], [1000.0]])
        ok, rv, tv = imgops.np_solve_pnp(MODEL_POINTS, pts, k, np.zeros((3, 1)), guess_t)
        ok_cv, rv_cv, tv_cv = cv2.solvePnP(MODEL_POINTS, pts.reshape(-1, 1, 2), k, None, np.zeros((3, 1)),
                                           guess_t.copy(), useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        assert ok and ok_cv
        assert np.allclose(rv, rv_cv, atol=2e-3) and np.allclose(tv, tv_cv, rtol=2e-3, atol=0.5), (rv, rv_cv, tv, tv_cv)


def test_without_opencv_the_drawing_and_haar_name_the_extra(monkeypatch):
    monkeypatch.setattr(imgops, "_cv2", None)
    with pytest.raises(MissingExtra, match=r"emolens\[opencv\]") as e:
        imgops.require_cv2("drawing annotated images")
    assert e.value.extra == "opencv"
    from emolens.inference.annotate import annotate
    from emolens.results import ImageResult

    with pytest.raises(MissingExtra):
        annotate(np.zeros((10, 10, 3), np.uint8), ImageResult(source="x", width=10, height=10, faces=[]))

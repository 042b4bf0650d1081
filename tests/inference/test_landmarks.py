"""The torch-free keypoint runner: model checks, frames, two-pass location, alignment, shipped model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from emolens.data.keypoints import KAGGLE15
from emolens.errors import InvalidInput, ModelFormatError
from emolens.inference.landmarks import (
    FaceLandmarks,
    LandmarkModel,
    apply,
    fit_frame,
    frame_matrix,
    invert,
    roll_of,
    shipped_landmark_path,
    warp_frame,
)
from tests.inference.modelfactory import make_model

from .keypointfactory import keypoint_meta, make_keypoint_model, two_eyes

LE, RE = KAGGLE15.index("left_eye_center"), KAGGLE15.index("right_eye_center")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LandmarkModel:
    return LandmarkModel(make_keypoint_model(tmp_path_factory.mktemp("kp") / "two_spots.onnx", size=32))


def test_roll_sign_and_frames() -> None:
    assert roll_of((0, 10), (10, 0)) == pytest.approx(45.0)  # the image-right eye higher: counter-clockwise
    m = frame_matrix((100.0, 50.0), 40.0, 0.0, 32)
    np.testing.assert_allclose(apply(m, np.array([[100.0, 50.0]])), [[15.5, 15.5]])  # centre -> frame middle
    np.testing.assert_allclose(apply(m, np.array([[80.25, 30.25]])), [[-0.3, -0.3]], atol=1e-9)
    np.testing.assert_allclose(apply(invert(m), apply(m, np.array([[3.0, 4.0]]))), [[3.0, 4.0]])
    turned = frame_matrix((0.0, 0.0), 32.0, 30.0, 32)
    a, b = apply(turned, np.array([[0.0, 0.0], [math.cos(math.radians(30)), -math.sin(math.radians(30))]]))
    assert b[1] == pytest.approx(a[1]) and b[0] > a[0]  # a line tilted by +30 degrees comes out level
    with pytest.raises(InvalidInput, match="positive"):
        frame_matrix((0, 0), 0.0, 0.0, 32)


def test_fit_frame_recovers_a_similarity() -> None:
    tpl = np.array([[10.0, 10.0], [20.0, 10.0], [15.0, 20.0], [12.0, 18.0]])
    angle = 20.0
    r = math.radians(angle)
    rot = np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])  # a CCW screen tilt
    pts = (tpl - 15) @ rot.T * 3.0 + [200, 100]
    m = fit_frame(pts, tpl, roll_of(pts[0], pts[1]))
    np.testing.assert_allclose(apply(m, pts), tpl, atol=1e-9)
    assert roll_of(pts[0], pts[1]) == pytest.approx(angle)
    with pytest.raises(InvalidInput, match="two distinct"):
        fit_frame(np.ones((4, 2)), tpl, 0.0)


def test_warp_frame_shrinks_with_area_averaging() -> None:
    yy, xx = np.mgrid[0:320, 0:320]
    smooth = (127 + 100 * np.sin(xx / 40.0) * np.cos(yy / 30.0)).astype(np.uint8)
    m = frame_matrix((159.5, 159.5), 320.0, 0.0, 40)  # the whole image shrunk 8x
    ref = cv2.resize(smooth, (40, 40), interpolation=cv2.INTER_AREA)
    assert np.abs(warp_frame(smooth, m, 40).astype(int) - ref).mean() < 3
    checker = (((xx // 2) + (yy // 2)) % 2 * 255).astype(np.uint8)  # 2-px checkerboard: pure aliasing bait
    shrunk = warp_frame(checker, m, 40)
    assert np.abs(shrunk.astype(int) - 127).max() < 40  # averaged to grey, not sampled into stripes
    dot = np.zeros((320, 320), np.uint8)
    dot[192:200, 96:104] = 255  # an 8x8 square centred on (99.5, 195.5)
    frame = warp_frame(dot, m, 40).astype(float)
    cy, cx = np.unravel_index(np.argmax(frame), frame.shape)
    assert (cx, cy) == (12, 24) and apply(m, np.array([[99.5, 195.5]]))[0] == pytest.approx([12, 24], abs=0.1)
    assert warp_frame(smooth, frame_matrix((159.5, 159.5), 50.0, 10.0, 40), 40).shape == (40, 40)
    outside = warp_frame(smooth, frame_matrix((-500.0, -500.0), 100.0, 0.0, 16), 16)
    assert (outside == smooth[0, 0]).all()  # far outside the image: border pixels repeated


def test_model_predicts_and_locates_the_eyes(model: LandmarkModel) -> None:
    assert model.names == KAGGLE15 and model.size == 32 and "points=15" in repr(model)
    crop = two_eyes((64, 64), (20.0, 30.0), (44.0, 26.0), sigma=3.0)
    pts = model.predict([crop])[0]
    # the test model's soft-argmax snaps towards pixel centres of its 32x32 input: +-0.5 px there
    np.testing.assert_allclose(pts[RE], [20, 30], atol=0.8)
    np.testing.assert_allclose(pts[LE], [44, 26], atol=0.8)
    img = two_eyes((480, 640), (280.0, 240.0), (360.0, 200.0), sigma=8.0)
    (lm,) = model.locate(img, [(250, 160, 140, 160)])
    assert isinstance(lm, FaceLandmarks)
    # image pixels, not frame pixels: one frame pixel is 5-8 image pixels here, and the toy model's
    # +-0.5 frame-pixel snapping moves each look's points by up to ~4 image pixels
    np.testing.assert_allclose(lm.points[RE], [280, 240], atol=4.5)
    np.testing.assert_allclose(lm.points[LE], [360, 200], atol=4.5)
    assert lm.roll == pytest.approx(math.degrees(math.atan2(40, 80)), abs=1.5)
    assert lm.eyes()[0][0] < lm.eyes()[1][0]  # image-left eye first
    d = lm.as_dict()
    assert set(d) == set(KAGGLE15) and d["left_eye_center"][0] > d["right_eye_center"][0]
    assert model.locate(img, []) == []


def test_locate_is_stable_under_box_jitter(model: LandmarkModel) -> None:
    img = two_eyes((300, 300), (130.0, 150.0), (180.0, 150.0), sigma=6.0, rgb=False)
    found = [model.locate(img, [box])[0].points[[RE, LE]] for box in
             [(100, 110, 110, 110), (90, 100, 140, 140), (115, 120, 90, 95)]]
    for f in found:
        np.testing.assert_allclose(f, [[130, 150], [180, 150]], atol=2.0)


def test_mirror_averaging(model: LandmarkModel, tmp_path: Path) -> None:
    img = two_eyes((300, 300), (130.0, 160.0), (180.0, 140.0), sigma=6.0)
    plain = model.locate(img, [(100, 100, 110, 110)])[0].points
    both = model.locate(img, [(100, 100, 110, 110)], tta=True)[0].points
    np.testing.assert_allclose(both[[RE, LE]], plain[[RE, LE]], atol=1.5)  # the mirror sees the same eyes
    frames = np.stack([two_eyes((32, 32), (9.0, 14.0), (22.0, 12.0), sigma=1.5, rgb=False)])
    one, two = model.predict_frames(frames), model.predict_frames(frames, tta=True)
    np.testing.assert_allclose(two[0, [RE, LE]], one[0, [RE, LE]], atol=0.6)
    meta = keypoint_meta(32)
    no_flip = LandmarkModel(make_keypoint_model(tmp_path / "noflip.onnx", size=32, meta=meta.replace(
        extra={k: v for k, v in meta.extra.items() if k != "flip"})))
    with pytest.raises(ModelFormatError, match="flip"):
        no_flip.predict_frames(frames, tta=True)


def test_bad_models(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="not found"):
        LandmarkModel(tmp_path / "absent.onnx")
    with pytest.raises(ModelFormatError, match="not a keypoint model"):
        LandmarkModel(make_model(tmp_path / "emotion.onnx"))
    with pytest.raises(ModelFormatError, match="not \\(N, 30\\)"):
        LandmarkModel(make_keypoint_model(tmp_path / "wide.onnx", out_width=12))
    no_shape = keypoint_meta(32)
    no_shape = no_shape.replace(extra={k: v for k, v in no_shape.extra.items() if k != "mean_shape"})
    with pytest.raises(ModelFormatError, match="mean_shape"):
        LandmarkModel(make_keypoint_model(tmp_path / "noshape.onnx", meta=no_shape))
    with pytest.raises(ModelFormatError, match="disagrees"):
        LandmarkModel(make_keypoint_model(tmp_path / "size.onnx", size=32, meta=keypoint_meta(24)))
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ModelFormatError, match="not a readable ONNX"):
        LandmarkModel(tmp_path / "junk.onnx")


def test_bad_input(model: LandmarkModel) -> None:
    with pytest.raises(InvalidInput, match=r"needs input \(N, 1, 32, 32\)"):
        model.predict_input(np.zeros((1, 1, 16, 16), np.float32))
    assert model.predict_input(np.zeros((0, 1, 32, 32), np.float32)).shape == (0, 15, 2)


def test_shipped_index_lookup(tmp_path: Path) -> None:
    assert shipped_landmark_path(tmp_path) is None  # no index
    (tmp_path / "models.json").write_text(json.dumps({"models": [{"name": "e", "file": "e.onnx"}]}))
    assert shipped_landmark_path(tmp_path) is None  # no keypoint entry
    (tmp_path / "models.json").write_text(json.dumps(
        {"models": [{"name": "e", "file": "e.onnx"}, {"name": "kp", "file": "kp.onnx", "task": "keypoints"}]}))
    with pytest.raises(ModelFormatError, match=r"kp\.onnx is missing"):
        shipped_landmark_path(tmp_path)
    make_keypoint_model(tmp_path / "kp.onnx")
    assert shipped_landmark_path(tmp_path) == tmp_path / "kp.onnx"
    (tmp_path / "models.json").write_text("{nope")
    with pytest.raises(ModelFormatError, match="not a valid model index"):
        shipped_landmark_path(tmp_path)


def test_runner_never_imports_torch(tmp_path: Path) -> None:
    path = make_keypoint_model(tmp_path / "kp.onnx")
    code = (
        "import sys, numpy as np\n"
        "from emolens.inference.landmarks import LandmarkModel\n"
        f"m = LandmarkModel({str(path)!r})\n"
        "m.locate(np.zeros((64, 64, 3), np.uint8), [(8, 8, 40, 40)])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- the packaged model on real faces


@pytest.fixture(scope="module")
def shipped_model() -> LandmarkModel:
    path = shipped_landmark_path()
    if path is None:
        pytest.skip("no packaged keypoint model in src/emolens/assets")
    return LandmarkModel(path)


@pytest.fixture(scope="module")
def test_faces(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 770 test faces (96x96) and their 15 points, from the shared keypoint data."""
    from emolens.data.keypoints import read_kaggle_csv

    root = shared_data / "facial-keypoints"
    _, rows = read_kaggle_csv(root / "keypoints15.csv.gz", root / "keypoints68.npz")
    test = rows.usage == "test"
    return rows.images[test], rows.points[test]


def _nme(pred: np.ndarray, true: np.ndarray) -> float:
    from emolens.evaluation.keypoints import keypoint_metrics

    return float(keypoint_metrics(pred, true, KAGGLE15)["nme"])


def _turn(img: np.ndarray, pts: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    m = cv2.getRotationMatrix2D((47.5, 47.5), angle, 1.0)
    out = cv2.warpAffine(img, m, (96, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, pts @ m[:, :2].T + m[:, 2]


def test_shipped_model_describes_itself(shipped_model: LandmarkModel) -> None:
    assert shipped_model.path.stat().st_size <= 3_000_000
    meta = shipped_model.meta
    assert meta.task == "keypoints" and meta.labels == KAGGLE15 and meta.channels == 1
    assert any(isinstance(v, dict) and v.get("nme", 1) <= 0.05 for v in meta.metrics.values())


@pytest.mark.shared
def test_shipped_model_meets_the_nme_target(shipped_model: LandmarkModel,
                                            test_faces: tuple[np.ndarray, np.ndarray]) -> None:
    images, points = test_faces
    assert _nme(shipped_model.predict(list(images)), points) <= 0.05
    # the engine's two-pass location from a detector-like box gets there too
    found = np.stack([shipped_model.locate(img, [(16, 16, 64, 64)])[0].points for img in images])
    assert _nme(found, points) <= 0.05


@pytest.mark.shared
@pytest.mark.parametrize("angle", [-20.0, 20.0])
def test_shipped_model_on_faces_turned_20_degrees(shipped_model: LandmarkModel,
                                                  test_faces: tuple[np.ndarray, np.ndarray], angle: float) -> None:
    images, points = test_faces
    turned = [_turn(img, pts, angle) for img, pts in zip(images, points, strict=True)]
    truth = np.stack([t[1] for t in turned])
    found = np.stack([shipped_model.locate(img, [(16, 16, 64, 64)])[0].points for img, _ in turned])
    assert _nme(found, truth) <= 0.05
    rolls = np.array([shipped_model.locate(img, [(16, 16, 64, 64)])[0].roll for img, _ in turned[:100]])
    upright = np.array([shipped_model.locate(img, [(16, 16, 64, 64)])[0].roll for img in images[:100]])
    assert np.median(np.abs(rolls - upright - angle)) < 2.0  # the roll follows the turn


@pytest.mark.shared
def test_shipped_model_on_real_photos(shipped_model: LandmarkModel, shared_data: Path) -> None:
    from emolens.inference.detect import create_detector
    from emolens.inference.imageio import load_image

    rgb = load_image(shared_data / "media" / "photos" / "face_recognition_two_people.jpg").rgb
    boxes = [d.box for d in create_detector("haar").detect(rgb)]
    assert len(boxes) == 2
    for box, lm in zip(boxes, shipped_model.locate(rgb, boxes), strict=True):
        x, y, w, h = box
        d = lm.as_dict()
        assert all(x - 0.1 * w <= px <= x + 1.1 * w and y - 0.1 * h <= py <= y + 1.1 * h for px, py in d.values())
        assert d["left_eye_center"][0] > d["right_eye_center"][0]  # the subject's left is on the image's right
        assert max(d["left_eye_center"][1], d["right_eye_center"][1]) < d["nose_tip"][1]
        assert d["nose_tip"][1] < d["mouth_center_bottom_lip"][1]
        assert abs(lm.roll) < 15  # official portraits: heads nearly upright

"""YuNet, the packaged default detector: decoding equal to OpenCV's FaceDetectorYN, landmarks named by
image side, small face crops, options refused with named errors; real photos from ../shared."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from emolens.errors import InvalidInput, ModelFormatError
from emolens.inference.analyzer import Analyzer
from emolens.inference.detect import AUTO_ORDER, create_detector
from emolens.inference.imageio import load_image
from emolens.inference.yunet import LANDMARK_NAMES, YuNetDetector, model_path

from .modelfactory import make_model


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector()


def test_packaged_with_its_licence_and_default() -> None:
    assert model_path().is_file() and (model_path().parent / "LICENSE").is_file()
    assert AUTO_ORDER[0] == "yunet" and create_detector("auto").name == "yunet"


def test_blank_and_noise_images_have_no_face(yunet: YuNetDetector, rng: np.random.Generator) -> None:
    assert yunet.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert yunet.detect(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []
    assert yunet.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert yunet.detect(np.full((90, 70), 128, np.uint8)) == []  # gray input is accepted


@pytest.mark.parametrize("kw", [{"score_threshold": 0}, {"score_threshold": 1.5}, {"nms_threshold": 0},
                                {"max_side": -1}, {"threads": -2}])
def test_bad_options_are_named(kw: dict[str, float]) -> None:
    with pytest.raises(InvalidInput, match="yunet"):
        YuNetDetector(**kw)  # type: ignore[arg-type]


def test_unloadable_model_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelFormatError, match=r"broken\.onnx"):
        YuNetDetector(path=bad)


def test_bad_image_arrays_are_named(yunet: YuNetDetector) -> None:
    with pytest.raises(InvalidInput):
        yunet.detect(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(InvalidInput):
        yunet.detect(np.zeros((10, 10, 3), np.float32))


def test_same_faces_as_opencv_facedetectoryn(yunet: YuNetDetector, shared_data: Path) -> None:
    """Our ONNX Runtime decoding gives OpenCV's own boxes, scores and landmarks (before our box calibration)."""
    photo = shared_data / "media" / "photos" / "dlib_2008_002470.jpg"
    bgr = cv2.imread(str(photo))
    h, w = bgr.shape[:2]
    fixed = shared_data.parent / "models" / "yunet" / "yunet_s_640_640.onnx"  # the same weights, fixed-size graph
    if not fixed.is_file():
        pytest.skip(f"{fixed} not found")
    ref = cv2.FaceDetectorYN.create(str(fixed), "", (w, h), 0.8, 0.3, 5000)
    _, faces = ref.detect(bgr)
    ours = yunet._raw(bgr)
    assert faces is not None and len(ours) == len(faces) >= 5
    got = sorted((x, y, bw, bh, s, *np.ravel(m)) for x, y, bw, bh, s, m in ours)
    want = sorted((f[0], f[1], f[2], f[3], f[14], *f[4:14]) for f in faces)
    assert np.allclose(np.array(got), np.array(want), atol=0.05)


def test_landmarks_named_by_image_side(yunet: YuNetDetector, shared_data: Path) -> None:
    rgb = load_image(shared_data / "media" / "photos" / "fer_justin.jpg").rgb
    (face,) = yunet.detect(rgb)
    m = face.landmarks
    assert m is not None and tuple(m) == LANDMARK_NAMES
    assert m["left_eye"][0] < m["nose"][0] < m["right_eye"][0]
    assert m["mouth_left"][0] < m["mouth_right"][0] and m["nose"][1] < m["mouth_left"][1]
    x, y, bw, bh = face.box
    assert all(x <= px <= x + bw and y <= py <= y + bh for px, py in m.values())


def test_finds_faces_in_small_dataset_crops(yunet: YuNetDetector, shared_data: Path) -> None:
    """FER2013's 48x48 faces: most are found by the enlarged-crop path, boxes inside the image."""
    import pandas as pd

    df = pd.read_csv(shared_data / "fer2013" / "fer2013.csv.gz", nrows=200)
    found = 0
    for px in df.pixels:
        gray = np.array(px.split(), np.uint8).reshape(48, 48)
        dets = yunet.detect(gray)
        found += bool(dets)
        for d in dets:
            x, y, bw, bh = d.box
            assert x >= 0 and y >= 0 and x + bw <= 48 and y + bh <= 48
    assert found >= 140  # measured: 84% at the default threshold


def test_whole_image_fallback_is_flagged(tmp_path: Path, rng: np.random.Generator) -> None:
    """A small, square, textured image without a detectable face is analysed as one face, flagged; a blank
    or a wide image is not; the fallback can be switched off."""
    model = make_model(tmp_path / "tiny.onnx")
    an = Analyzer(model, keypoints=False)
    texture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    (face,) = an.analyze(texture).faces
    assert face.whole_image and face.box == (0, 0, 64, 64) and face.detection_score == 0.0
    assert face.to_dict()["whole_image"] is True
    assert an.analyze(np.zeros((64, 64, 3), np.uint8)).faces == ()
    assert an.analyze(rng.integers(0, 256, (60, 150, 3), dtype=np.uint8)).faces == ()
    assert Analyzer(model, keypoints=False, whole_image_fallback=False).analyze(texture).faces == ()


def test_every_face_gets_a_pose_and_looking(shared_data: Path, tmp_path: Path) -> None:
    an = Analyzer(make_model(tmp_path / "tiny.onnx"), keypoints=False)
    res = an.analyze(shared_data / "media" / "photos" / "dlib_2008_004176.jpg")
    assert len(res.faces) == 7
    for f in res.faces:
        assert f.yaw is not None and f.pitch is not None and f.looking is not None
        assert f.looking == (abs(f.yaw) <= 30 and abs(f.pitch) <= 25)
        d = f.to_dict()
        assert {"yaw", "pitch", "looking"} <= set(d) and "whole_image" not in d

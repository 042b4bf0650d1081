"""The Analyzer with a keypoint model: keypoints in image pixels, roll, aligned crops, fallbacks."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emolens.data.keypoints import KAGGLE15
from emolens.errors import InvalidInput, ModelFormatError
from emolens.inference import shipped
from emolens.inference.analyzer import Analyzer
from emolens.inference.detect import Detection
from emolens.inference.landmarks import LandmarkModel, shipped_landmark_path

from .keypointfactory import make_keypoint_model, two_eyes
from .modelfactory import make_model, tiny_meta
from .test_analyzer import FixedDetector

LE, RE = KAGGLE15.index("left_eye_center"), KAGGLE15.index("right_eye_center")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("an_kp")
    return {"emotion": make_model(root / "emo.onnx", tiny_meta(size=32)),
            "keypoints": make_keypoint_model(root / "kp.onnx", size=64)}


@pytest.fixture()
def tilted() -> tuple[np.ndarray, Detection]:
    """Two eyes tilted by atan(40/90) = 24 degrees counter-clockwise, and a face box around them."""
    img = two_eyes((400, 500), (200.0, 230.0), (290.0, 190.0), sigma=7.0)
    return img, Detection((170, 150, 150, 160), 0.9, {"left_eye": (1.0, 1.0), "right_eye": (2.0, 2.0)})


def test_keypoints_in_image_pixels_and_roll(files: dict[str, Path], tilted: tuple[np.ndarray, Detection]) -> None:
    img, det = tilted
    an = Analyzer(files["emotion"], detector=FixedDetector([det]), keypoints=files["keypoints"])
    (face,) = an.analyze(img).faces
    assert face.keypoints is not None and set(face.keypoints) == set(KAGGLE15)
    assert face.keypoints["right_eye_center"] == pytest.approx((200, 230), abs=3)
    assert face.keypoints["left_eye_center"] == pytest.approx((290, 190), abs=3)
    assert face.roll == pytest.approx(math.degrees(math.atan2(40, 90)), abs=2)
    d = face.to_dict()
    assert len(d["keypoints"]) == 15 and isinstance(d["roll"], float)
    assert "keypoints='kp'" in repr(an)


def test_aligned_crop_has_level_eyes(files: dict[str, Path], tilted: tuple[np.ndarray, Detection]) -> None:
    img, det = tilted
    an = Analyzer(files["emotion"], detector=FixedDetector([det]), keypoints=files["keypoints"], margin=0.1)
    crop, roll, marks = an.align_face(img, det)
    assert crop.shape == (192, 192, 3) and roll is not None and marks is not None  # the box's scale, turned
    found = LandmarkModel(files["keypoints"]).predict([crop])[0]
    assert abs(found[RE, 1] - found[LE, 1]) < 2.0  # level (they were 40 px apart)
    assert found[LE, 0] - found[RE, 0] == pytest.approx(math.hypot(90, 40), abs=4)


def test_align_off_keeps_keypoints_and_the_box_crop(
    files: dict[str, Path], tilted: tuple[np.ndarray, Detection]
) -> None:
    img, det = tilted
    an = Analyzer(files["emotion"], detector=FixedDetector([det]), keypoints=files["keypoints"], align=False,
                  margin=0.1)
    crop, roll, _ = an.align_face(img, det)
    assert crop.shape == (192, 192, 3)  # max(150, 160) * 1.2, not turned
    (face,) = an.analyze(img).faces
    assert face.keypoints is not None and face.roll == pytest.approx(roll)


def test_cropped_images_are_turned_upright(files: dict[str, Path]) -> None:
    img = two_eyes((64, 64), (20.0, 34.0), (44.0, 24.0), sigma=3.0)
    an = Analyzer(files["emotion"], detector="haar", keypoints=files["keypoints"])
    res = an.analyze(img, cropped=True)
    (face,) = res.faces
    assert face.box == (0, 0, 64, 64) and face.roll == pytest.approx(math.degrees(math.atan2(10, 24)), abs=2)
    assert face.keypoints is not None and face.keypoints["left_eye_center"] == pytest.approx((44, 24), abs=1.5)
    assert set(res.timings_ms) == {"decode", "detect", "align", "classify"}
    crop, _, _ = an._landmark_faces(img, [(0, 0, 64, 64)], cropped=True)[0]
    found = LandmarkModel(files["keypoints"]).predict([crop])[0]
    assert crop.shape == (64, 64, 3) and abs(found[RE, 1] - found[LE, 1]) < 1.0
    plain = Analyzer(files["emotion"], detector="haar", keypoints=files["keypoints"], align=False)
    (same,) = plain.analyze(img, cropped=True).faces
    assert same.keypoints == face.keypoints and same.roll == face.roll  # the same points, only the crop differs
    assert plain._landmark_faces(img, [(0, 0, 64, 64)], cropped=True)[0][0] is img  # not turned


def test_keypoints_false_keeps_the_eye_fallback(files: dict[str, Path], tilted: tuple[np.ndarray, Detection]) -> None:
    img, det = tilted
    an = Analyzer(files["emotion"], detector=FixedDetector([det]), keypoints=False)
    assert an.landmarks is None
    (face,) = an.analyze(img).faces
    assert face.keypoints == {"left_eye": (1.0, 1.0), "right_eye": (2.0, 2.0)}  # the detector's own eyes


def test_packaged_keypoint_model_is_the_default(files: dict[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shipped, "assets_dir", lambda: tmp_path)
    with pytest.raises(InvalidInput, match="none ships"):
        Analyzer(files["emotion"], detector="haar", keypoints=True)
    assert Analyzer(files["emotion"], detector="haar").landmarks is None
    shutil.copy(files["keypoints"], tmp_path / "kp15.onnx")
    shutil.copy(files["emotion"], tmp_path / "emo.onnx")
    (tmp_path / "models.json").write_text(json.dumps({"models": [
        {"name": "emo", "file": "emo.onnx", "default": True},
        {"name": "kp15", "file": "kp15.onnx", "task": "keypoints"}]}))
    assert shipped_landmark_path() == tmp_path / "kp15.onnx"
    an = Analyzer(files["emotion"], detector="haar")
    assert an.landmarks is not None and an.landmarks.name == "kp15"
    assert Analyzer(files["emotion"], detector="haar", keypoints="kp15").landmarks is not None
    with pytest.raises(ModelFormatError, match="not a keypoint model"):
        Analyzer(files["emotion"], detector="haar", keypoints="emo")


def test_engine_with_keypoints_never_imports_torch(files: dict[str, Path]) -> None:
    code = (
        "import sys, numpy as np\n"
        "from emolens import Analyzer\n"
        f"an = Analyzer({str(files['emotion'])!r}, detector='haar', keypoints={str(files['keypoints'])!r})\n"
        "an.analyze(np.zeros((64, 64, 3), np.uint8), cropped=True)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.shared
def test_packaged_models_on_a_real_photo(shared_data: Path) -> None:
    if shipped_landmark_path() is None:
        pytest.skip("no packaged keypoint model in src/emolens/assets")
    photo = shared_data / "media" / "photos" / "dlib_2008_002506.jpg"  # three men, one head tilted
    res = Analyzer(detector="haar").analyze(photo)
    assert len(res.faces) == 3
    for face in res.faces:
        assert face.keypoints is not None and set(face.keypoints) == set(KAGGLE15) and face.roll is not None
        _, y, _, h = face.box
        left, right = face.keypoints["left_eye_center"], face.keypoints["right_eye_center"]
        assert y <= (left[1] + right[1]) / 2 <= y + 0.6 * h and left[0] > right[0]  # subject's left: image right
    plain = Analyzer(detector="haar", align=False).analyze(photo)
    assert [f.keypoints for f in plain.faces] == [f.keypoints for f in res.faces]  # alignment changes crops only

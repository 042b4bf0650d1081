import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolens.errors import EmolensError, InvalidInput, ModelFormatError, UnsupportedMedia
from emolens.inference.analyzer import Analyzer
from emolens.inference.detect import Detection, iou
from emolens.inference.imageio import load_image
from emolens.inference.shipped import assets_dir
from emolens.labels import FER7

from . import badinputs as bad
from .modelfactory import make_model, tiny_meta

PHOTOS = ["dlib_2008_001322.jpg", "fer_no_faces_cartoon.jpg", "fer_justin.jpg"]  # small ones: 4 faces


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("m") / "tiny.onnx")


@pytest.fixture(scope="module")
def analyzer(model_path: Path) -> Analyzer:
    return Analyzer(model_path, detector="haar")


class FixedDetector:
    """Returns the same detections for every image."""

    name = "fixed"

    def __init__(self, dets: list[Detection]) -> None:
        self.dets = dets

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return list(self.dets)


def left_bright(size: int = 48) -> np.ndarray:
    img = np.zeros((size, size), np.uint8)
    img[:, : size // 2] = 255
    return img


def test_properties(analyzer: Analyzer) -> None:
    assert analyzer.labels == FER7 and analyzer.model_name == "tiny"
    assert analyzer.meta.input_size == (16, 16)
    assert "haar" in repr(analyzer)


def test_cropped_input_is_one_face(analyzer: Analyzer) -> None:
    res = analyzer.analyze(left_bright(), cropped=True, source="fer.png")
    assert res.source == "fer.png" and (res.width, res.height) == (48, 48)
    (face,) = res.faces
    assert face.box == (0, 0, 48, 48) and face.emotion == "anger"  # the tiny model's class 0
    assert sum(face.probabilities.values()) == pytest.approx(1.0)
    assert set(res.timings_ms) == {"decode", "detect", "align", "classify"}
    json.loads(res.to_json())


def test_tta(model_path: Path) -> None:
    res = Analyzer(model_path, detector="haar", tta=True).analyze(left_bright(), cropped=True)
    p = res.faces[0].probabilities
    assert p["anger"] == pytest.approx(p["disgust"])  # the mirror swaps classes 0 and 1


def test_no_faces_on_blank_image(analyzer: Analyzer) -> None:
    res = analyzer.analyze(np.zeros((120, 160, 3), np.uint8))
    assert res.faces == () and res.source == "<array>" and res.width == 160


def test_landmarks_rotate_the_crop_and_are_reported(model_path: Path) -> None:
    det = Detection((40, 40, 80, 80), 0.9, {"left_eye": (60.0, 80.0), "right_eye": (100.0, 60.0)})
    an = Analyzer(model_path, detector=FixedDetector([det]), keypoints=False)  # the detector's eyes, not a model's
    (face,) = an.analyze(np.full((200, 200, 3), 90, np.uint8)).faces
    assert face.roll == pytest.approx(26.565, abs=0.01)
    assert face.keypoints is not None and face.keypoints["left_eye"] == (60.0, 80.0)
    crop, roll, _ = an.align_face(np.full((200, 200, 3), 90, np.uint8), det)
    assert roll == pytest.approx(26.565, abs=0.01) and crop.shape == (93, 93, 3)
    no_align = Analyzer(model_path, detector=FixedDetector([det]), align=False, keypoints=False)
    assert no_align.analyze(np.zeros((200, 200, 3), np.uint8)).faces[0].roll is None


def test_sorted_left_to_right_and_small_faces_dropped(model_path: Path) -> None:
    dets = [Detection((150, 10, 40, 40), 0.5), Detection((10, 100, 40, 40), 0.7), Detection((80, 80, 8, 8), 0.9)]
    an = Analyzer(model_path, detector=FixedDetector(dets), min_face=16, align=False)
    res = an.analyze(np.zeros((200, 200, 3), np.uint8))
    assert [f.box for f in res.faces] == [(10, 100, 40, 40), (150, 10, 40, 40)]
    assert [f.detection_score for f in res.faces] == [0.7, 0.5]


def test_margin_from_metadata(tmp_path: Path) -> None:
    path = make_model(tmp_path / "wide.onnx", tiny_meta(crop_margin=0.5))
    det = Detection((40, 40, 40, 40), 0.9)
    an = Analyzer(path, detector=FixedDetector([det]), align=False)
    assert an.margin == 0.5
    assert an.align_face(np.zeros((200, 200, 3), np.uint8), det)[0].shape == (80, 80, 3)
    assert Analyzer(path, detector="haar", margin=0.0).margin == 0.0


def test_bad_construction(model_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="did you mean"):
        Analyzer(model_path, detector="haarr")
    with pytest.raises(InvalidInput, match="detect"):
        Analyzer(model_path, detector=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="margin"):
        Analyzer(model_path, detector="haar", margin=5.0)
    with pytest.raises(ModelFormatError, match="not found"):
        Analyzer(tmp_path / "absent.onnx")


def test_classify_crops(analyzer: Analyzer) -> None:
    out = analyzer.classify_crops([left_bright(), left_bright(30)[:, ::-1]])
    assert [max(d, key=d.get) for d in out] == ["anger", "disgust"]  # type: ignore[arg-type]
    assert all(sum(d.values()) == pytest.approx(1.0) for d in out)


def test_analyze_many_errors_go_to_the_handler(analyzer: Analyzer) -> None:
    items = [(c.name, c.data) for c in bad.corpus()]
    errors: list[tuple[str, EmolensError]] = []
    results = list(analyzer.analyze_many(items, batch_size=2, on_error=lambda s, e: errors.append((s, e)),
                                         workers=3))
    expected_bad = {c.name: c.error for c in bad.corpus() if c.error}
    assert {s for s, _ in errors} == set(expected_bad)
    assert all(isinstance(e, expected_bad[s]) for s, e in errors)  # type: ignore[arg-type]
    assert [r.source for r in results] == [c.name for c in bad.corpus() if c.error is None]
    exif = next(r for r in results if r.source == "exif_rotated.jpg")
    assert (exif.width, exif.height) == (64, 48)


def test_analyze_many_raises_without_handler(analyzer: Analyzer, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match="zero"):
        list(analyzer.analyze_many([("zero", b"")]))
    with pytest.raises(InvalidInput, match=r"absent\.jpg"):
        list(analyzer.analyze_many([tmp_path / "absent.jpg"]))
    with pytest.raises(InvalidInput, match="batch_size"):
        list(analyzer.analyze_many([], batch_size=0))
    with pytest.raises(InvalidInput, match="workers"):
        list(analyzer.analyze_many([], workers=0))


def test_analyze_many_names_items(analyzer: Analyzer) -> None:
    arrays = [np.zeros((50, 50, 3), np.uint8)] * 2
    assert [r.source for r in analyzer.analyze_many(arrays, cropped=True)] == ["<item 0>", "<item 1>"]


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> Path:
    return shared_data / "media" / "photos"


def test_real_photos(analyzer: Analyzer, photos: Path) -> None:
    counts = {"dlib_2008_001322.jpg": 3, "face_recognition_two_people.jpg": 2, "dlib_dogs.jpg": 0,
              "fer_justin.jpg": 1, "dlib_2008_007676.jpg": 7}
    for name, count in counts.items():
        res = analyzer.analyze(photos / name)
        assert len(res.faces) == count, name
        xs = [f.box[0] for f in res.faces]
        assert xs == sorted(xs)
        for f in res.faces:
            x, y, w, h = f.box
            assert min(x, y) >= 0 and x + w <= res.width and y + h <= res.height
            assert f.emotion in FER7 and sum(f.probabilities.values()) == pytest.approx(1.0)
        assert res.model == "tiny" and json.loads(res.to_json())["source"] == str(photos / name)


def test_analyze_many_matches_analyze(analyzer: Analyzer, photos: Path) -> None:
    paths = [photos / n for n in PHOTOS]
    single = [analyzer.analyze(p) for p in paths]
    for batch_size, workers in ((1, 1), (2, 3), (64, 2)):
        many = list(analyzer.analyze_many(paths, batch_size=batch_size, workers=workers))
        assert [r.source for r in many] == [str(p) for p in paths]
        for a, b in zip(single, many, strict=True):
            assert [f.box for f in a.faces] == [f.box for f in b.faces]
            for fa, fb in zip(a.faces, b.faces, strict=True):
                assert fa.probabilities == pytest.approx(fb.probabilities, abs=1e-6)
            assert b.timings_ms["classify"] >= 0.0


def test_shared_across_threads(analyzer: Analyzer, photos: Path) -> None:
    paths = [photos / n for n in PHOTOS] * 2
    expected = {str(p): analyzer.analyze(p).to_dict()["faces"] for p in paths}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(analyzer.analyze, paths))
    for r in results:
        assert r.to_dict()["faces"] == expected[r.source]


def test_exif_rotated_photo_keeps_its_face(analyzer: Analyzer, photos: Path) -> None:
    upright = load_image(photos / "fer_justin.jpg").rgb
    (face,) = analyzer.analyze(upright).faces
    for orientation in (6, 8, 3):
        res = analyzer.analyze(bad.exif_rotated_jpeg(upright, orientation), source=f"o{orientation}.jpg")
        assert (res.width, res.height) == (upright.shape[1], upright.shape[0])
        assert len(res.faces) == 1 and iou(res.faces[0].box, face.box) > 0.8


def test_bytes_and_array_inputs_agree(analyzer: Analyzer, photos: Path) -> None:
    path = photos / "face_recognition_two_people.jpg"
    a = analyzer.analyze(path.read_bytes())
    b = analyzer.analyze(np.asarray(Image.open(path).convert("RGB")))
    assert a.source == "<bytes>" and [f.box for f in a.faces] == [f.box for f in b.faces]


def test_default_packaged_model(photos: Path) -> None:
    if not (assets_dir() / "models.json").is_file():
        pytest.skip(f"no packaged model yet ({assets_dir() / 'models.json'} is absent)")
    an = Analyzer()
    res = an.analyze(photos / "wujie_angry_man.jpg")
    assert len(res.faces) == 1 and res.faces[0].emotion in an.labels
    (crying,) = an.analyze(photos / "wujie_crying_woman.jpg", cropped=True).faces
    assert sum(crying.probabilities.values()) == pytest.approx(1.0)


def test_inference_path_never_imports_torch(model_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from emolens import Analyzer\n"
        f"an = Analyzer({str(model_path)!r}, detector='auto')\n"
        "an.analyze(np.zeros((64, 64, 3), np.uint8))\n"
        "an.analyze(np.zeros((48, 48), np.uint8), cropped=True)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_missing_packaged_model_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from emolens.inference import shipped

    monkeypatch.setattr(shipped, "assets_dir", lambda: tmp_path)
    with pytest.raises(ModelFormatError, match=r"models\.json is missing"):
        Analyzer()
    with pytest.raises(ModelFormatError, match="not-a-model"):
        Analyzer("not-a-model")

import numpy as np
import pytest

from emolens.errors import InvalidInput
from emolens.inference.annotate import EMOTION_COLORS, annotate, emotion_color, emotion_color_hex
from emolens.labels import FER7, FERPLUS8
from emolens.results import FaceResult, ImageResult


def _face(box, emotion="happiness", keypoints=None, labels=FER7):
    rest = (1.0 - 0.7) / (len(labels) - 1)
    probs = {lb: (0.7 if lb == emotion else rest) for lb in labels}
    return FaceResult(box=box, detection_score=0.9, emotion=emotion, probabilities=probs, keypoints=keypoints)


def _result(img, *faces):
    return ImageResult(source="x.jpg", width=img.shape[1], height=img.shape[0], faces=tuple(faces))


def test_palette_covers_every_label_and_colours_differ():
    assert set(FERPLUS8) <= set(EMOTION_COLORS)
    assert len(set(EMOTION_COLORS.values())) == len(EMOTION_COLORS)
    assert emotion_color("unknown-label") == emotion_color("unknown-label")
    assert emotion_color_hex("anger") == "#dc2828"


def test_returns_copy_and_leaves_input_untouched():
    img = np.full((240, 320, 3), 255, np.uint8)
    before = img.copy()
    out = annotate(img, _result(img, _face((100, 60, 80, 90))))
    assert np.array_equal(img, before)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)


def test_box_drawn_in_emotion_colour():
    img = np.full((240, 320, 3), 255, np.uint8)
    out = annotate(img, _result(img, _face((100, 60, 80, 90), "sadness")), draw_bars=False)
    # the left edge of the box, below the tag, carries the emotion's colour
    column = out[100:140, 100]
    assert (column == np.array(EMOTION_COLORS["sadness"])).all(axis=1).sum() >= 30


def test_no_faces_leaves_image_unchanged(rng):
    img = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    out = annotate(img, _result(img))
    assert np.array_equal(out, img)


def test_bars_drawn_beside_the_face_and_switchable():
    img = np.full((240, 320, 3), 255, np.uint8)
    res = _result(img, _face((40, 60, 80, 90)))
    with_bars = annotate(img, res)
    without = annotate(img, res, draw_bars=False)
    right_of_box = (slice(60, 150), slice(125, 200))
    assert not np.array_equal(with_bars[right_of_box], img[right_of_box])
    assert np.array_equal(without[right_of_box], img[right_of_box])


@pytest.mark.parametrize("box", [(290, 200, 60, 60), (-20, -10, 50, 40), (0, 0, 320, 240)])
def test_everything_stays_inside_for_faces_at_edges(box):
    img = np.full((240, 320, 3), 255, np.uint8)
    out = annotate(img, _result(img, _face(box, labels=FERPLUS8)))
    assert out.shape == img.shape
    assert not np.array_equal(out, img)


@pytest.mark.parametrize("shape", [(12, 10, 3), (30, 400, 3), (400, 16, 3), (2000, 3000, 3)])
def test_tiny_and_huge_images(shape):
    img = np.zeros(shape, np.uint8)
    h, w = shape[:2]
    out = annotate(img, _result(img, _face((w // 4, h // 4, max(1, w // 2), max(1, h // 2)))))
    assert out.shape == shape
    assert out.any()


def test_keypoints_drawn_when_present_and_switchable():
    img = np.full((240, 320, 3), 255, np.uint8)
    kp = {"left_eye": (20.0, 200.0), "outside": (1000.0, -5.0), "nan": (float("nan"), 3.0)}
    res = _result(img, _face((150, 20, 60, 60), keypoints=kp))
    on = annotate(img, res, draw_bars=False)
    off = annotate(img, res, draw_bars=False, draw_keypoints=False)
    assert not np.array_equal(on[197:204, 17:24], img[197:204, 17:24])
    assert np.array_equal(off[197:204, 17:24], img[197:204, 17:24])


def test_gray_and_rgba_inputs_are_converted(rng):
    gray = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    assert annotate(gray, _result(gray, _face((10, 10, 30, 30)))).shape == (60, 80, 3)
    rgba = rng.integers(0, 256, (60, 80, 4), dtype=np.uint8)
    assert annotate(rgba, _result(rgba, _face((10, 10, 30, 30)))).shape == (60, 80, 3)


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 3), np.float32), np.zeros((5,), np.uint8),
                                 np.zeros((0, 10, 3), np.uint8), np.zeros((4, 4, 2), np.uint8)])
def test_bad_arrays_raise_invalid_input(bad):
    with pytest.raises(InvalidInput):
        annotate(bad, ImageResult(source="x", width=10, height=10, faces=()))


def test_real_photo_annotation(shared_data):
    import cv2

    path = shared_data / "media" / "photos" / "fer_justin.jpg"
    bgr = cv2.imread(str(path))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    out = annotate(rgb, _result(rgb, _face((w // 3, h // 4, w // 3, h // 2), "neutral")))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).sum() > 0

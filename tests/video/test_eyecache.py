import pytest

from emolens.inference.detect import Detection
from emolens.video.eyecache import EyeCache


def test_eyes_follow_the_box_until_the_interval_ends() -> None:
    cache = EyeCache(interval_s=0.5)
    det = Detection((100, 50, 40, 40), 0.9)
    assert cache.lookup(1, det, 0.0) is None  # nothing cached yet
    cache.store(1, det, {"left_eye": (110.0, 60.0), "right_eye": (130.0, 62.0)}, 0.0)
    moved = Detection((120, 70, 80, 80), 0.9)  # moved and twice as large
    cached = cache.lookup(1, moved, 0.3)
    assert cached is not None and not cached.placeholder
    hit = cached.detection
    assert hit.box == moved.box and hit.landmarks is not None
    assert hit.landmarks["left_eye"] == pytest.approx((140.0, 90.0))
    assert hit.landmarks["right_eye"] == pytest.approx((180.0, 94.0))
    assert cache.lookup(1, moved, 0.5) is None  # stale: search again
    assert cache.lookup(2, moved, 0.1) is None  # another track
    assert cache.hits == 1


def test_a_failed_search_is_remembered_as_level_placeholder_eyes() -> None:
    cache = EyeCache(0.5)
    det = Detection((0, 0, 10, 10), 0.9)
    cache.store(1, det, {"left_eye": (2.0, 3.0), "right_eye": (8.0, 3.0)}, 0.0)
    cache.store(1, det, None, 0.1)  # the next search found nothing
    cached = cache.lookup(1, det, 0.2)
    assert cached is not None and cached.placeholder
    marks = cached.detection.landmarks
    assert marks is not None and marks["left_eye"][1] == marks["right_eye"][1]  # level: no rotation
    assert cache.lookup(1, det, 0.6) is None  # searched again after the interval


def test_forgotten_tracks_are_searched_again() -> None:
    cache = EyeCache(0.5)
    det = Detection((0, 0, 10, 10), 0.9)
    cache.store(2, det, {"left_eye": (2.0, 3.0), "right_eye": (8.0, 3.0)}, 0.0)
    cache.keep_only([3])
    assert cache.lookup(2, det, 0.1) is None


def test_detector_landmarks_are_left_alone() -> None:
    cache = EyeCache(10.0)
    own = Detection((0, 0, 10, 10), 0.9, {"left_eye": (1.0, 1.0), "right_eye": (9.0, 1.0)})
    cache.store(1, own, own.landmarks, 0.0)
    assert cache.lookup(1, own, 0.1) is None


def test_placeholder_eyes_give_the_crop_of_a_failed_search(tiny_model) -> None:
    import numpy as np

    from emolens.inference.analyzer import Analyzer

    an = Analyzer(tiny_model, detector="haar", align=True, keypoints=False)  # the eye-cascade path
    rgb = np.full((200, 200, 3), 120, np.uint8)
    rgb[60:140, 60:140] = 200  # a face-sized blob without eyes: the eye search fails
    det = Detection((60, 60, 80, 80), 0.9)
    crop, roll, marks = an.align_face(rgb, det)
    assert roll is None and not (marks or {}).get("left_eye")
    cache = EyeCache(1.0)
    cache.store(1, det, marks, 0.0)
    cached = cache.lookup(1, det, 0.1)
    assert cached is not None and cached.placeholder
    same, _, _ = an.align_face(rgb, cached.detection)
    assert np.array_equal(same, crop)

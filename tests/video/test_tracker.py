import numpy as np
import pytest

from emolens.errors import InvalidInput
from emolens.video.tracker import FaceTracker, Track, default_high_score, iou_matrix

DT = 1.0 / 30.0


def run(tracker: FaceTracker, frames: list[list[tuple[float, float, float, float]]], scores=None, t0: float = 0.0):
    """Feed frames of boxes; returns the ids per frame."""
    out = []
    for i, boxes in enumerate(frames):
        sc = [0.9] * len(boxes) if scores is None else scores[i]
        out.append(tracker.update(boxes, sc, t0 + i * DT))
    return out


def test_iou_matrix_matches_hand_values() -> None:
    a = np.array([[0, 0, 10, 10], [100, 100, 10, 10]], float)
    b = np.array([[5, 0, 10, 10], [0, 0, 10, 10]], float)
    m = iou_matrix(a, b)
    assert m.shape == (2, 2)
    assert m[0, 0] == pytest.approx(50 / 150)
    assert m[0, 1] == pytest.approx(1.0)
    assert m[1, 0] == 0.0 and m[1, 1] == 0.0
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_one_moving_face_keeps_its_id() -> None:
    tracker = FaceTracker()
    frames = [[(10.0 + 4 * i, 20.0, 40.0, 40.0)] for i in range(60)]
    ids = run(tracker, frames)
    assert {i[0] for i in ids} == {1}


def test_crossing_faces_keep_their_ids() -> None:
    """Two faces walk towards each other on the same line and pass; motion tells them apart."""
    tracker = FaceTracker()
    frames = []
    for i in range(40):
        a = (20.0 + 6 * i, 50.0, 40.0, 40.0)   # left -> right
        b = (260.0 - 6 * i, 54.0, 40.0, 40.0)  # right -> left
        frames.append([a, b])
    ids = run(tracker, frames)
    assert all(pair == [1, 2] for pair in ids), ids


def test_crossing_with_the_detector_missing_one_face_while_they_overlap() -> None:
    tracker = FaceTracker()
    frames, who = [], []
    for i in range(40):
        a = (20.0 + 6 * i, 50.0, 40.0, 40.0)
        b = (260.0 - 6 * i, 54.0, 40.0, 40.0)
        if 18 <= i <= 22:  # overlapping: only one box comes out of the detector's NMS
            frames.append([a])
            who.append(["a"])
        else:
            frames.append([a, b])
            who.append(["a", "b"])
    ids = run(tracker, frames)
    for names, got in zip(who, ids, strict=True):
        assert got == [{"a": 1, "b": 2}[n] for n in names]


def test_face_that_vanishes_briefly_keeps_its_id() -> None:
    tracker = FaceTracker(max_age_s=1.0)
    frames = [[(100.0 + i, 80.0, 50.0, 50.0)] for i in range(10)] + [[] for _ in range(15)]  # 0.5 s gone
    frames += [[(125.0 + i, 80.0, 50.0, 50.0)] for i in range(10)]
    ids = run(tracker, frames)
    assert {i[0] for i in ids if i} == {1}


def test_face_gone_longer_than_max_age_gets_a_new_id() -> None:
    tracker = FaceTracker(max_age_s=0.3)
    frames = [[(100.0, 80.0, 50.0, 50.0)]] * 5 + [[] for _ in range(15)] + [[(100.0, 80.0, 50.0, 50.0)]] * 5
    ids = run(tracker, frames)
    assert ids[0] == [1] and ids[-1] == [2]
    assert tracker.live_ids == {2}


def test_new_person_gets_a_new_id_and_old_ones_stay() -> None:
    tracker = FaceTracker()
    frames = [[(10.0, 10.0, 40.0, 40.0)]] * 10 + [[(10.0, 10.0, 40.0, 40.0), (200.0, 10.0, 40.0, 40.0)]] * 10
    ids = run(tracker, frames)
    assert ids[0] == [1] and ids[-1] == [1, 2]


def test_low_score_detection_keeps_a_track_but_never_starts_one() -> None:
    tracker = FaceTracker(high_score=0.5)
    box = (50.0, 50.0, 40.0, 40.0)
    assert tracker.update([box], [0.3], 0.0) == [None]  # low, no track to extend: dropped
    assert tracker.update([box], [0.9], DT) == [1]
    assert tracker.update([(52.0, 50.0, 40.0, 40.0)], [0.3], 2 * DT) == [1]  # stage 2 keeps it
    far = (300.0, 300.0, 40.0, 40.0)
    assert tracker.update([(54.0, 50.0, 40.0, 40.0), far], [0.9, 0.2], 3 * DT) == [1, None]


def test_high_score_detections_win_over_low_ones_for_a_track() -> None:
    tracker = FaceTracker(high_score=0.5)
    tracker.update([(50.0, 50.0, 40.0, 40.0)], [0.9], 0.0)
    ids = tracker.update([(51.0, 50.0, 40.0, 40.0), (52.0, 50.0, 40.0, 40.0)], [0.2, 0.8], DT)
    assert ids == [None, 1]


def test_prediction_follows_constant_velocity() -> None:
    tr = Track(1, Track.to_state((0, 0, 10, 10)), 0.0, 0.0)
    tr.observe((3, 0, 10, 10), 0.1)  # 30 px/s measured, blended with 0
    x, _, w, _ = tr.predict(0.2, horizon_s=1.0)
    assert w == pytest.approx(10.0)
    assert 3.0 < x < 6.0
    assert tr.predict(10.0, horizon_s=0.5) == tr.predict(0.6, horizon_s=0.5)  # horizon caps the jump


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidInput):
        FaceTracker(match_iou=0.0)
    with pytest.raises(InvalidInput, match="boxes but"):
        FaceTracker().update([(0, 0, 1, 1)], [], 0.0)


def test_default_high_score_per_backend() -> None:
    assert default_high_score("dlib") == 0.75
    assert default_high_score("haar-default+profile") == default_high_score("haar")
    assert default_high_score("something-else") == 0.5


def test_newly_lost_counts_tracks_that_just_vanished() -> None:
    tracker = FaceTracker()
    tracker.update([(10, 10, 40, 40), (200, 10, 40, 40)], [0.9, 0.9], 0.0)
    assert tracker.newly_lost == 0
    tracker.update([(10, 10, 40, 40)], [0.9], DT)
    assert tracker.newly_lost == 1
    tracker.update([(10, 10, 40, 40)], [0.9], 2 * DT)
    assert tracker.newly_lost == 0  # still lost, not newly


def test_weak_new_detections_wait_for_a_second_frame() -> None:
    """Under confirm_score a new face is tentative: no id until matched again, dropped when missed; ids of
    confirmed tracks count up without gaps."""
    from emolens.video.tracker import FaceTracker

    tr = FaceTracker(high_score=0.8, confirm_score=0.9)
    assert tr.update([(0, 0, 40, 40), (200, 0, 40, 40)], [0.95, 0.85], 0.0) == [1, None]
    assert tr.live_ids == {1}
    assert tr.update([(1, 0, 40, 40), (201, 0, 40, 40)], [0.95, 0.85], 0.1) == [1, 2]  # confirmed: numbered 2
    assert tr.update([(300, 0, 40, 40)], [0.82], 0.2) == [None]  # a one-frame fragment
    assert tr.update([(2, 0, 40, 40)], [0.95], 0.3) == [1]  # the fragment's tentative track is gone
    assert tr.update([(301, 0, 40, 40)], [0.82], 0.4) == [None]
    assert tr.update([(302, 0, 40, 40)], [0.83], 0.5) == [3]

import pytest

from emolens.results import FrameResult
from emolens.video.tracksummary import TrackSummaryBuilder

from .sequences import LABELS, face, sequence


def build(frames, **kw):
    b = TrackSummaryBuilder(LABELS, **kw)
    for f in frames:
        b.add(f)
    return b, b.build()


def test_summary_of_the_hand_made_sequence() -> None:
    b, (t1, t2) = build(sequence())
    assert b.frames == 5 and b.classified_frames == 4 and b.face_rows == 6
    assert b.duration_s == pytest.approx(0.5)  # 0.0 .. 0.4 plus the last frame's 0.1 s
    # track 1: frames 0-3, each standing for 0.1 s
    assert (t1.track_id, t1.frames, t1.classified_frames) == (1, 4, 3)
    assert (t1.first_seen_s, t1.last_seen_s, t1.on_screen_s) == pytest.approx((0.0, 0.3, 0.4))
    assert t1.emotion_shares == pytest.approx({"a": 0.5, "b": 0.5})
    assert t1.mean_probabilities == pytest.approx({"a": (0.9 + 0.6 + 0.2 + 0.3) / 4, "b": 0.5})
    assert (t1.peaks["a"].probability, t1.peaks["a"].time_s, t1.peaks["a"].frame) == pytest.approx((0.9, 0.0, 0))
    assert (t1.peaks["b"].probability, t1.peaks["b"].time_s, t1.peaks["b"].frame) == pytest.approx((0.8, 0.2, 2))
    assert t1.top_emotion == "a"  # a tie goes to the earlier label
    # track 2: frames 3-4, the last frame weighs the interval before it (0.1 s)
    assert (t2.first_seen_s, t2.last_seen_s, t2.on_screen_s, t2.frames) == pytest.approx((0.3, 0.4, 0.2, 2))
    assert t2.mean_probabilities["a"] == pytest.approx(0.45)
    assert t2.peaks["b"].probability == pytest.approx(0.9) and t2.peaks["b"].frame == 3
    assert t2.peaks["a"].frame == 4
    assert b.label_time == pytest.approx({"a": 0.3, "b": 0.3})


def test_variable_frame_rate_weights_frames_by_their_duration() -> None:
    frames = [FrameResult(i, t, 10, 10, (face(1, pa),)) for i, (t, pa) in enumerate([(0.0, 1.0), (0.1, 0.0),
                                                                                       (0.4, 0.0)])]
    _, (t,) = build(frames, default_interval_s=0.04)
    assert t.on_screen_s == pytest.approx(0.1 + 0.3 + 0.04)
    assert t.mean_probabilities["a"] == pytest.approx(0.1 / 0.44)
    assert t.emotion_shares["b"] == pytest.approx(0.34 / 0.44)


def test_single_frame_and_empty_input() -> None:
    b, tracks = build([FrameResult(0, 0.0, 10, 10, (face(7, 0.3),))])
    assert b.duration_s == 0.0
    (t,) = tracks
    assert t.on_screen_s == 0.0 and t.top_emotion == "b" and t.mean_probabilities["b"] == pytest.approx(0.7)
    empty, none = build([])
    assert none == [] and empty.duration_s == 0.0


def test_to_dict_and_describe() -> None:
    _, (t1, _) = build(sequence())
    d = t1.to_dict()
    assert d["track_id"] == 1 and d["top_emotion"] == "a" and d["peaks"]["a"] == {"probability": 0.9, "time_s": 0.0,
                                                                                   "frame": 0}
    assert t1.describe().startswith("#1 0.4 s on screen: a 50%")


def test_looking_share_is_time_weighted_over_frames_with_a_pose() -> None:
    """Track 1 looks in frames 0 and 2 (0.1 s + 0.3 s), not in frame 1 (0.2 s), has no pose in frame 3;
    track 2 never has a pose: its share is None, not 0."""
    from dataclasses import replace

    times, looks = [0.0, 0.1, 0.3, 0.6, 1.0], [True, False, True, None, None]
    frames = [
        FrameResult(i, t, 160, 120, (replace(face(1, 0.7), looking=lk), face(2, 0.2, x=100)))
        for i, (t, lk) in enumerate(zip(times, looks, strict=True))
    ]
    b = TrackSummaryBuilder(LABELS)
    for fr in frames:
        b.add(fr)
    one, two = b.build()
    assert one.looking_share == pytest.approx((0.1 + 0.3) / (0.1 + 0.2 + 0.3))
    assert two.looking_share is None
    assert one.to_dict()["looking_share"] == pytest.approx(0.666667, abs=1e-6) and "looking 67%" in one.describe()

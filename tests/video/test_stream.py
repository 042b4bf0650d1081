from pathlib import Path

import numpy as np
import pytest

from emolens.errors import InvalidInput, UnsupportedMedia
from emolens.video.smoothing import REFERENCE_DT
from emolens.video.stream import VideoOptions, VideoProgress, iter_video

from .synth import write_video

FPS = 25.0


def two_faces(n: int = 30) -> list:
    """A left-lit square moving right and a right-lit square moving left (never overlapping)."""
    return [[(10 + 2 * i, 20, 30, "left"), (120 - 2 * i, 70, 30, "right")] for i in range(n)]


def test_two_faces_keep_ids_and_emotions(tmp_path: Path, square_analyzer) -> None:
    path = write_video(tmp_path / "two.avi", two_faces(), fps=FPS, size=(120, 160))
    frames = list(iter_video(square_analyzer(), path, VideoOptions(detect_interval_s=0.2)))
    assert len(frames) == 30
    assert [f.index for f in frames] == list(range(30))
    assert [f.time_s for f in frames] == pytest.approx([i / FPS for i in range(30)])
    for f in frames:
        assert [face.track_id for face in f.faces] == [1, 2]
        assert [face.emotion for face in f.faces] == ["anger", "disgust"]
        assert f.classified and (f.width, f.height) == (160, 120)
        assert sum(f.faces[0].probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # the boxes follow the squares (region search between key frames)
    assert abs(frames[-1].faces[0].box[0] - (10 + 2 * 29)) <= 2
    assert abs(frames[-1].faces[1].box[0] - (120 - 2 * 29)) <= 2


def test_every_n_classifies_some_frames_and_carries_the_rest(tmp_path: Path, square_analyzer) -> None:
    path = write_video(tmp_path / "two.avi", two_faces(10), fps=FPS, size=(120, 160))
    frames = list(iter_video(square_analyzer(), path, VideoOptions(every=3)))
    assert [f.classified for f in frames] == [i % 3 == 0 for i in range(10)]
    for f in frames:
        source = frames[f.index - f.index % 3]
        for face, ref in zip(f.faces, source.faces, strict=True):
            assert face.track_id == ref.track_id
            assert dict(face.probabilities) == dict(ref.probabilities)
    assert frames[1].timings_ms["classify"] < 1e3  # timings present on carried frames too
    assert frames[2].faces[0].box != frames[0].faces[0].box  # boxes still move


def test_new_face_on_a_carried_frame_is_classified_at_once(tmp_path: Path, square_analyzer) -> None:
    scenes = [[(10, 20, 30, "left")]] * 4 + [[(10, 20, 30, "left"), (100, 60, 30, "right")]] * 4
    path = write_video(tmp_path / "late.avi", scenes, fps=FPS, size=(120, 160))
    frames = list(iter_video(square_analyzer(), path, VideoOptions(every=4, detect_interval_s=0.0)))
    assert [len(f.faces) for f in frames] == [1] * 4 + [2] * 4
    late = frames[5]
    assert not late.classified and late.faces[1].track_id == 2 and late.faces[1].emotion == "disgust"


def test_smoothing_is_a_time_aware_ema_of_the_raw_probabilities(tmp_path: Path, square_analyzer) -> None:
    scenes = [[(40, 30, 40, "left")]] * 6 + [[(40, 30, 40, "right")]] * 6
    path = write_video(tmp_path / "flip.avi", scenes, fps=FPS, size=(120, 160))
    raw = list(iter_video(square_analyzer(), path))
    smooth = list(iter_video(square_analyzer(), path, VideoOptions(smoothing=0.8)))
    assert raw[6].faces[0].emotion == "disgust"  # raw output switches at once
    assert smooth[6].faces[0].emotion == "anger"  # smoothed lags behind
    assert smooth[-1].faces[0].emotion == "disgust"
    labels = list(raw[0].faces[0].probabilities)
    expected = np.array([raw[0].faces[0].probabilities[lb] for lb in labels])
    for prev, cur, out in zip(raw, raw[1:], smooth[1:], strict=False):
        keep = 0.8 ** ((cur.time_s - prev.time_s) / REFERENCE_DT)
        expected = keep * expected + (1 - keep) * np.array([cur.faces[0].probabilities[lb] for lb in labels])
        assert [out.faces[0].probabilities[lb] for lb in labels] == pytest.approx(expected)


def test_video_without_faces_gives_empty_frames(tmp_path: Path, square_analyzer) -> None:
    path = write_video(tmp_path / "empty.avi", 15, fps=FPS)
    frames = list(iter_video(square_analyzer(), path))
    assert len(frames) == 15 and all(f.faces == () for f in frames)


def test_limits_and_progress(tmp_path: Path, square_analyzer) -> None:
    path = write_video(tmp_path / "v.avi", two_faces(20), fps=FPS, size=(120, 160))
    seen: list[VideoProgress] = []
    stream = iter_video(square_analyzer(), path, VideoOptions(max_frames=7), progress=seen.append)
    assert stream.progress.frames_total == 7
    assert len(list(stream)) == 7
    assert [p.frames_done for p in seen] == [1, 2, 3, 4, 5, 6, 7, 7]
    assert seen[-1].done and not seen[-2].done and seen[-1].eta_s == 0.0
    assert seen[0].frames_total == 7 and seen[0].broken_frames == 0
    by_time = list(iter_video(square_analyzer(), path, VideoOptions(max_duration_s=0.2)))
    assert by_time[-1].time_s == pytest.approx(0.16) and len(by_time) == 5  # [0, 0.2): 0.2 is not analysed


def test_with_frames_and_early_close(tmp_path: Path, square_analyzer) -> None:
    path = write_video(tmp_path / "v.avi", two_faces(10), fps=FPS, size=(120, 160))
    stream = iter_video(square_analyzer(), path)
    result, rgb = next(stream.with_frames())
    assert rgb.shape == (120, 160, 3) and result.index == 0
    stream.close()
    assert stream.progress.done
    assert list(stream) == []


def test_bad_files_fail_before_any_frame(tmp_path: Path, square_analyzer) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    with pytest.raises(UnsupportedMedia, match=r"notes\.mp4"):
        iter_video(square_analyzer(), text)
    with pytest.raises(UnsupportedMedia, match="no such video"):
        iter_video(square_analyzer(), tmp_path / "nope.avi")


@pytest.mark.parametrize(
    "kw", [{"every": 0}, {"smoothing": 1.0}, {"smoothing": -0.5}, {"max_frames": 0}, {"max_duration_s": 0.0},
           {"track_max_age_s": -1.0}, {"roi_face_px": 2}, {"loop": 0}, {"start_s": -1.0}, {"sample_fps": 0.0}],
)
def test_bad_options_are_refused(kw) -> None:
    with pytest.raises(InvalidInput, match="bad video options"):
        VideoOptions(**kw)


def test_options_must_be_video_options(tmp_path: Path, square_analyzer) -> None:
    path = write_video(tmp_path / "v.avi", 3)
    with pytest.raises(InvalidInput, match="VideoOptions"):
        iter_video(square_analyzer(), path, {"every": 2})  # type: ignore[arg-type]


def test_start_and_sample_fps_analyse_only_the_sampled_frames(tmp_path: Path, square_analyzer) -> None:
    path = write_video(tmp_path / "v.avi", two_faces(50), fps=FPS, size=(120, 160))  # 2 s at 25 fps
    with iter_video(square_analyzer(), path, VideoOptions(start_s=0.5, sample_fps=5.0)) as stream:
        frames = list(stream)
    times = [round(f.time_s, 2) for f in frames]
    # frame i is at i / 25 s: the first of each 0.2 s slot from 0.5 s (0.48 s is before the start)
    assert times == [0.52, 0.72, 0.92, 1.12, 1.32, 1.52, 1.72, 1.92]
    assert [f.index for f in frames] == [13, 18, 23, 28, 33, 38, 43, 48]
    assert all(len(f.faces) == 2 for f in frames) and stream.progress.frames_done == 8


class _EyedSquares:
    """Squares with eyes at fixed places in their box (as a landmark-giving detector reports them)."""

    name = "eyed-squares"

    def __init__(self) -> None:
        from .synth import SquareDetector

        self.inner = SquareDetector()

    def detect(self, rgb: np.ndarray) -> list:
        from emolens.inference.detect import Detection

        out = []
        for d in self.inner.detect(rgb):
            x, y, w, h = d.box
            eyes = {"left_eye": (x + 0.7 * w, y + 0.4 * h), "right_eye": (x + 0.3 * w, y + 0.4 * h)}
            out.append(Detection(d.box, d.score, eyes))
        return out


def test_carried_faces_keep_keypoints_moved_with_their_box(tmp_path: Path, tiny_model: Path) -> None:
    from emolens.inference.analyzer import Analyzer

    path = write_video(tmp_path / "two.avi", two_faces(9), fps=FPS, size=(120, 160))
    an = Analyzer(tiny_model, detector=_EyedSquares(), align=True, keypoints=False, min_face=8)  # type: ignore[arg-type]
    frames = list(iter_video(an, path, VideoOptions(every=3, detect_interval_s=0.0)))
    carried = [f for f in frames if not f.classified]
    assert carried and all(face.keypoints is not None for f in frames for face in f.faces)
    for frame in carried:  # moved with the box: where the detector puts the eyes on this frame
        for face in frame.faces:
            x, y, w, h = face.box
            assert face.keypoints is not None and face.roll is not None
            assert face.keypoints["left_eye"] == pytest.approx((x + 0.7 * w, y + 0.4 * h), abs=1.0)
            assert face.keypoints["right_eye"] == pytest.approx((x + 0.3 * w, y + 0.4 * h), abs=1.0)

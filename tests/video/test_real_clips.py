"""The real clips of ../shared/data/media/videos: identities over whole clips, anger rising.

Tracking does not depend on the emotion model, so those tests use the tiny test model (fast);
the anger test needs the real packaged model and is skipped without it. Measured values are
printed (``pytest -s``) so they can be quoted.
"""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from emolens.inference.analyzer import Analyzer
from emolens.inference.shipped import INDEX, assets_dir
from emolens.video.stream import VideoOptions, iter_video

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def videos(shared_data: Path) -> Path:
    folder = shared_data / "media" / "videos"
    if not folder.is_dir():
        pytest.skip(f"no real videos at {folder}")
    return folder


@pytest.fixture(scope="module")
def dlib_analyzer(tiny_model: Path) -> Analyzer:
    return Analyzer(tiny_model)  # default detector (dlib when installed)


def track_stats(analyzer: Analyzer, path: Path, **kw) -> tuple[Counter[int], dict[int, tuple[float, float]], float]:
    counts: Counter[int] = Counter()
    spans: dict[int, tuple[float, float]] = {}
    last_t = 0.0
    for frame in iter_video(analyzer, path, VideoOptions(**kw)):
        last_t = frame.time_s
        for face in frame.faces:
            assert face.track_id is not None
            counts[face.track_id] += 1
            first = spans.get(face.track_id, (frame.time_s, frame.time_s))[0]
            spans[face.track_id] = (first, frame.time_s)
    return counts, spans, last_t


@pytest.mark.parametrize(
    "clip",
    [
        "youtubefaces_0492_03_009_bill_gates.avi",
        "huimiang_1543684773_anger.avi",
        "huimiang_1543684810_anger.avi",
        pytest.param("fer_woman2.mp4", marks=pytest.mark.slow),
    ],
)
def test_single_speaker_keeps_one_id_for_the_whole_clip(videos: Path, dlib_analyzer: Analyzer, clip: str) -> None:
    counts, spans, end = track_stats(dlib_analyzer, videos / clip)
    main, n = counts.most_common(1)[0]
    first, last = spans[main]
    print(f"{clip}: tracks {dict(counts)}, main #{main} from {first:.2f} to {last:.2f} s of {end:.2f} s")
    assert n / sum(counts.values()) >= 0.95
    assert (last - first) >= 0.9 * end


def test_multi_face_clip_yields_several_ids(videos: Path, dlib_analyzer: Analyzer) -> None:
    counts, spans, _ = track_stats(dlib_analyzer, videos / "face_recognition_short_hamilton_clip.mp4")
    print(f"hamilton: tracks {dict(counts)}, spans {spans}")
    assert len(counts) >= 3


@pytest.fixture(scope="module")
def shipped_analyzer() -> Analyzer:
    if not (assets_dir() / INDEX).is_file():
        pytest.skip(f"no packaged model yet ({assets_dir() / INDEX} is missing): the anger trend needs a real model")
    return Analyzer()


@pytest.mark.parametrize("clip", ["huimiang_1543684773_anger.avi", "huimiang_1543684810_anger.avi"])
def test_neutral_to_angry_clips_show_anger_rising(videos: Path, shipped_analyzer: Analyzer, clip: str) -> None:
    anger = []
    for frame in iter_video(shipped_analyzer, videos / clip):
        if frame.faces:
            anger.append(max(f.probabilities["anger"] for f in frame.faces))
    assert len(anger) >= 30
    third = len(anger) // 3
    early, late = float(np.mean(anger[:third])), float(np.mean(anger[-third:]))
    print(f"{clip}: mean anger first third {early:.3f}, last third {late:.3f} ({len(anger)} frames)")
    assert late > early

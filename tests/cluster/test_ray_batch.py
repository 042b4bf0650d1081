"""Batch analysis on a local Ray (``ray.init(num_cpus=2)``): per-file results equal a single-process run on
the media photos and two short clips (same output files), input order kept, a refused file reported with its
named error, a crashing or raising worker retried and then reported, never dropped."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from emolens.cluster.ray_batch import analyze_images, analyze_videos, output_folders
from emolens.cluster.worker import EngineSpec, build_analyzer, record_video
from emolens.errors import BackendError, InvalidInput, ModelFormatError, UnsupportedMedia
from emolens.inference.analyzer import Analyzer
from emolens.results import ImageResult

ray = pytest.importorskip("ray")
CLIPS = ("huimiang_1543684773_anger.avi", "huimiang_1543684810_anger.avi")
SAME_FILES = ("frames.csv", "seconds.csv", "tracks.csv")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


def _plain(r: ImageResult) -> dict[str, Any]:
    d = r.to_dict()
    d.pop("timings_ms")
    return d


def test_photos_equal_a_single_process_run(shared_data: Path, tmp_path: Path) -> None:
    photos = sorted(str(p) for p in (shared_data / "media" / "photos").iterdir() if p.suffix == ".jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    paths = [*photos[:8], str(broken), *photos[8:]]
    outcomes = list(analyze_images(paths, EngineSpec(), progress=False))
    assert [o.index for o in outcomes] == list(range(len(paths))) and [o.path for o in outcomes] == paths
    bad = outcomes[8]
    assert not bad.ok and isinstance(bad.error, UnsupportedMedia) and bad.attempts == 1 and bad.value is None
    good = [o for o in outcomes if o.ok]
    assert len(good) == len(photos) and all(o.attempts == 1 for o in good)
    local = Analyzer()  # the engine emolens analyze builds, all threads, classifying across images
    want = [_plain(r) for r in local.analyze_many(photos, batch_size=64)]
    assert [_plain(o.value) for o in good] == want
    assert sum(len(o.value.faces) for o in good) >= 40


def test_generated_images_equal_a_single_process_run(tmp_path: Path, rng: np.random.Generator) -> None:
    paths = []
    for i in range(3):
        img = rng.integers(0, 256, (48, 48), dtype=np.uint8) if i else np.zeros((120, 160, 3), np.uint8)
        paths.append(tmp_path / f"g{i}.png")
        cv2.imwrite(str(paths[-1]), img)
    spec = EngineSpec(model="ferplus8", keypoints=False)
    outcomes = list(analyze_images(paths, spec, actors=1, progress=False))
    local = build_analyzer(spec)
    assert [_plain(o.value) for o in outcomes] == [_plain(local.analyze(str(p))) for p in paths]
    assert outcomes[0].value.faces == () and outcomes[1].value.faces[0].whole_image


def test_videos_write_the_same_files_as_a_single_process_run(shared_data: Path, tmp_path: Path) -> None:
    from emolens.video.stream import VideoOptions

    options = VideoOptions(smoothing=0.95, max_duration_s=1.0)
    clips = [str(shared_data / "media" / "videos" / c) for c in CLIPS]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    outcomes = list(analyze_videos([clips[0], str(broken), clips[1]], tmp_path / "ray", options=options,
                                   progress=False))
    assert [o.ok for o in outcomes] == [True, False, True] and isinstance(outcomes[1].error, UnsupportedMedia)
    local = build_analyzer(EngineSpec())
    for clip, outcome in zip(clips, (outcomes[0], outcomes[2]), strict=True):
        name = Path(clip).stem
        want = record_video(local, clip, tmp_path / "local" / name, options)
        got_dir, want_dir = tmp_path / "ray" / name, tmp_path / "local" / name
        for f in SAME_FILES:
            assert (got_dir / f).read_bytes() == (want_dir / f).read_bytes(), f
        assert (got_dir / "frames.csv").read_text().count("\n") > 20
        summaries = [json.loads((d / "summary.json").read_text()) for d in (got_dir, want_dir)]
        for s in [*summaries, outcome.value, want]:
            s.pop("stream"), s.pop("files")
        assert summaries[0] == summaries[1] and outcome.value == want and want["tracks_count"] >= 1


class Flaky:
    """An engine whose worker process dies on the first try of ``*crash_once*`` and raises on ``*raise*``."""

    def __init__(self, analyzer: Analyzer, markers: str) -> None:
        self.analyzer, self.markers, self.labels = analyzer, Path(markers), analyzer.labels

    def analyze(self, path: str, cropped: bool = False) -> ImageResult:
        if "crash_once" in path:
            marker = self.markers / "crashed"
            if not marker.exists():
                marker.touch()
                os._exit(1)  # the actor's process dies mid-call
        if "raise" in path:
            raise RuntimeError("boom")
        return self.analyzer.analyze(path, cropped=cropped)




def _flaky(markers: str, spec: EngineSpec) -> Flaky:
    return Flaky(build_analyzer(spec), markers)


def test_failed_workers_are_retried_then_reported(tmp_path: Path, rng: np.random.Generator) -> None:
    names = ["a.png", "crash_once.png", "raise.png", "b.png"]
    for n in names:
        cv2.imwrite(str(tmp_path / n), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    outcomes = list(analyze_images([tmp_path / n for n in names], EngineSpec(keypoints=False), max_retries=2,
                                   progress=False, factory=partial(_flaky, str(tmp_path))))
    assert [Path(o.path).name for o in outcomes] == names
    assert [o.attempts for o in outcomes] == [1, 2, 3, 1]  # the crash retried once; "raise" tried 1 + 2 times
    assert outcomes[1].ok and outcomes[1].value.source == str(tmp_path / "crash_once.png")
    assert isinstance(outcomes[2].error, BackendError) and "RuntimeError: boom" in str(outcomes[2].error)
    assert "raise.png" in str(outcomes[2].error) and outcomes[0].ok and outcomes[3].ok


def test_an_engine_that_cannot_be_built_is_named_before_any_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="no-such-model"):
        list(analyze_images([tmp_path / "x.png"], EngineSpec(model="no-such-model"), progress=False))
    with pytest.raises(InvalidInput):
        EngineSpec(threads=0)
    with pytest.raises(InvalidInput):
        list(analyze_images([tmp_path / "x.png"], max_retries=-1))
    assert list(analyze_images([])) == []


def test_output_folders_are_unique_per_name() -> None:
    got = output_folders(["a/clip.mp4", "b/clip.avi", "c/Clip.mp4", "other.mp4"], "out")
    assert [p.name for p in got] == ["clip", "clip_2", "Clip_3", "other"] and got[0].parent == Path("out")


def test_cli_analyze_on_ray_prints_what_the_plain_run_prints(shared_data: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from emolens.cli import main

    photos = shared_data / "media" / "photos"
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    args = ["analyze", str(photos / "dlib_bald_guys.jpg"), str(broken), str(photos / "wujie_angry_man.jpg"),
            "--format", "jsonl", "--no-progress"]
    runs = []
    for extra in ([], ["--ray"]):
        assert main([*args, *extra]) == 0
        captured = capsys.readouterr()
        rows = [json.loads(line) for line in captured.out.splitlines()]
        for row in rows:
            row.pop("timings_ms", None)
        runs.append((rows, captured.err))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 2
    errors = [[line for line in err.splitlines() if line.startswith(("error:", "summary:"))] for _, err in runs]
    assert errors[0] == errors[1] and any("broken.jpg" in line for line in errors[1])
    assert [r.get("source") for r in runs[1][0] if "faces" in r] == [
        str(photos / "dlib_bald_guys.jpg"), str(photos / "wujie_angry_man.jpg")]

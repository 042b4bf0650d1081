"""``analyse_all(..., remote=...)``: the recordings the cache lacks are read elsewhere (on Ray in
``emolens campaign analyze --ray``), all at once; the results equal the in-process ones, errors (a refused
file, a worker that kept failing) exclude the recording with their reason, and nothing is dropped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from emolens.campaign.manifest import Ad, Manifest, Recording
from emolens.campaign.recording import FrameCache, analyse_all, read_recording
from emolens.errors import BackendError, EmolensError

from .fakes import FakeAnalyser, frame, probs


def _manifest(tmp_path: Path) -> Manifest:
    for name in ("a.mp4", "b.mp4", "bad.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(name.encode())
    recs = tuple(Recording(f"v{i}", "ad", tmp_path / name, "video", offset_s=0.5)
                 for i, name in enumerate(("a.mp4", "b.mp4", "bad.mp4", "c.mp4")))
    return Manifest(tmp_path / "m.yaml", "c", (Ad("ad", 2.0),), recs)


def _fake() -> FakeAnalyser:
    rows = {n: [frame(t, probs("happiness", 0.6 + t / 10)) for t in (0.2, 0.7, 1.4, 2.4)]
            for n in ("a.mp4", "b.mp4", "c.mp4")}
    return FakeAnalyser(rows, broken=["bad.mp4"])


def test_remote_reading_equals_the_local_one_and_keeps_every_recording(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    local = analyse_all(m, _fake(), FrameCache(tmp_path / "local"), progress=False)
    asked: list[list[str]] = []
    remote_engine = _fake()

    def remote(jobs: Sequence[tuple[Recording, tuple[float, float]]]) -> Iterator[pd.DataFrame | EmolensError]:
        asked.append([rec.path.name for rec, _ in jobs])
        for rec, window in jobs:
            if rec.path.name == "c.mp4":  # a worker that kept crashing: reported by the scheduler
                yield BackendError(f"{rec.path}: failed 3 time(s) on Ray: RayActorError")
                continue
            try:
                yield read_recording(rec.kind, rec.path, window, remote_engine)
            except EmolensError as err:
                yield err

    cache = FrameCache(tmp_path / "remote")
    got = analyse_all(m, _fake(), cache, progress=False, remote=remote)
    assert asked == [["a.mp4", "b.mp4", "bad.mp4", "c.mp4"]] and remote_engine.windows["a.mp4"] == (0.5, 2.5)
    assert [r.recording for r in got] == list(m.recordings)
    for mine, theirs in zip(got[:2], local[:2], strict=True):
        assert mine.error is None and mine.frames.equals(theirs.frames) and len(mine.frames) == 3
    assert got[2].error == local[2].error and "not a video" in str(got[2].error) and got[2].frames.empty
    assert got[3].error is not None and "failed 3 time(s) on Ray" in got[3].error and got[3].frames.empty
    again = analyse_all(m, _fake(), cache, progress=False, remote=remote)  # the cache answers first
    assert asked[1] == ["bad.mp4", "c.mp4"] and [r.cached for r in again] == [True, True, False, False]

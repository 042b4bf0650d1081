"""Annotated viewer videos for the report: H.264, one frame per analysed frame, drawn from the frame
table (so from the cache too); an undecodable recording gives no video, never an error."""

from __future__ import annotations

from pathlib import Path

import av

from emolens.campaign.annotated import write_viewer_video
from emolens.campaign.recording import frame_table
from emolens.labels import FER7
from tests.video.synth import write_video

from .fakes import frame, probs


def test_viewer_video_is_h264_with_one_frame_per_analysed_frame(tmp_path: Path) -> None:
    write_video(tmp_path / "rec.avi", 40, fps=10.0)  # 4 s, 160x120
    rows = frame_table([frame(t / 5, None if t == 3 else probs("happiness", 0.8)) for t in range(10)], FER7)
    rel = write_viewer_video(tmp_path / "rec.avi", rows, FER7, 5.0, tmp_path / "out", "spot a", "v/1")
    assert rel == "videos/spot_a_v_1.mp4"
    with av.open(str(tmp_path / "out" / rel)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in c.decode(stream)) == 10
        assert stream.average_rate is not None and float(stream.average_rate) == 5.0


def test_undecodable_recording_gives_no_video(tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    rows = frame_table([frame(0.0, probs("happiness", 0.8))], FER7)
    assert write_viewer_video(tmp_path / "bad.mp4", rows, FER7, 5.0, tmp_path / "out", "a", "v") is None
    assert write_viewer_video(tmp_path / "bad.mp4", rows.iloc[0:0], FER7, 5.0, tmp_path / "out", "a", "v") is None
    assert not (tmp_path / "out" / "videos").exists()

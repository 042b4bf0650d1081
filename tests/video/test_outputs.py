import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from emolens.errors import InvalidInput
from emolens.video.outputs import BASE_COLUMNS, FrameTable, VideoRecorder

from .sequences import LABELS, sequence
from .synth import draw_squares


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def record(out: Path, **kw) -> tuple[VideoRecorder, object]:
    rec = VideoRecorder(out, LABELS, **kw)
    for f in sequence():
        rec.add(f, draw_squares(120, 160, [(20, 20, 30, "left"), (100, 60, 30, "right")]))
    return rec, rec.close({"broken_frames": 2})


def test_frames_csv_and_parquet_rows(tmp_path: Path) -> None:
    record(tmp_path)
    rows = read_csv(tmp_path / "frames.csv")
    assert list(rows[0]) == [*BASE_COLUMNS, "a", "b"]
    assert len(rows) == 6
    first = rows[0]
    assert (first["time_s"], first["frame"], first["track_id"], first["emotion"]) == ("0.0000", "0", "1", "a")
    assert (first["x"], first["y"], first["w"], first["h"], first["classified"]) == ("10", "20", "30", "30", "1")
    assert float(first["a"]) == pytest.approx(0.9) and float(first["b"]) == pytest.approx(0.1)
    assert rows[1]["classified"] == "0"
    table = pq.read_table(tmp_path / "frames.parquet")
    assert table.column_names == [*BASE_COLUMNS, "a", "b"]
    assert table.num_rows == 6
    assert table.column("track_id").to_pylist() == [int(r["track_id"]) for r in rows]
    assert table.column("a").to_pylist() == pytest.approx([float(r["a"]) for r in rows])
    assert table.column("classified").to_pylist()[:2] == [True, False]


def test_track_files_hold_the_hand_computed_summary(tmp_path: Path) -> None:
    _, summary = record(tmp_path)
    tracks = read_csv(tmp_path / "tracks.csv")
    assert [t["track_id"] for t in tracks] == ["1", "2"]
    t1 = tracks[0]
    assert (t1["first_seen_s"], t1["last_seen_s"], t1["on_screen_s"], t1["frames"]) == (
        "0.0000", "0.3000", "0.4000", "4")
    assert float(t1["share_a"]) == pytest.approx(0.5) and float(t1["mean_a"]) == pytest.approx(0.5)
    assert (t1["peak_a_s"], t1["peak_a"]) == ("0.0000", "0.900000")
    body = json.loads((tmp_path / "summary.json").read_text())
    assert body == summary.to_dict()
    assert body["frames"] == 5 and body["classified_frames"] == 4 and body["face_rows"] == 6
    assert body["duration_s"] == pytest.approx(0.5)
    assert body["emotion_shares"] == pytest.approx({"a": 0.5, "b": 0.5})
    assert body["tracks"][1]["mean_probabilities"]["a"] == pytest.approx(0.45)
    assert body["stream"] == {"broken_frames": 2}
    assert set(body["files"]) >= {"frames_csv", "frames_parquet", "tracks_csv", "summary_json", "timelines"}


def test_timeline_png_for_every_track(tmp_path: Path) -> None:
    record(tmp_path)
    pngs = sorted((tmp_path / "timelines").glob("*.png"))
    assert [p.name for p in pngs] == ["track_1.png", "track_2.png"]  # short tracks too
    img = cv2.imread(str(pngs[0]))
    assert img is not None and img.shape[1] > 400


def test_annotated_and_blurred_video(tmp_path: Path) -> None:
    plain, blurred = tmp_path / "plain", tmp_path / "blur"
    record(plain, annotate_mp4=True, fps=10.0)
    record(blurred, annotate_mp4=True, blur_faces=True)  # fps from the timestamps
    frames = {}
    for name in ("plain", "blur"):
        cap = cv2.VideoCapture(str(tmp_path / name / "annotated.mp4"))
        assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
        ok, frames[name] = cap.read()
        cap.release()
        assert ok and frames[name].shape == (120, 160, 3)
    # inside the first face box (x 10..40, y 20..50 at frame 0) the blurred video lost the sharp edge
    edge = lambda img: np.abs(np.diff(img[30:45, 12:38, 1].astype(int), axis=1)).max()  # noqa: E731
    assert edge(frames["blur"]) < edge(frames["plain"])


def test_frame_table_writes_chunks_as_it_goes(tmp_path: Path) -> None:
    table = FrameTable(tmp_path, LABELS, chunk_rows=2)
    frames = sequence()
    for f in frames[:3]:
        table.add(f)
    assert table.rows_written == 2  # flushed before close, to a temporary file:
    assert not (tmp_path / "frames.csv").exists()  # frames.csv appears whole, at close (fsio)
    for f in frames[3:]:
        table.add(f)
    table.close()
    assert table.rows_written == 6
    assert pq.ParquetFile(tmp_path / "frames.parquet").num_row_groups == 3


def test_close_twice_and_add_after_close(tmp_path: Path) -> None:
    rec, summary = record(tmp_path)
    assert rec.close() is summary
    with pytest.raises(InvalidInput, match="closed"):
        rec.add(sequence()[0])


def test_empty_recording(tmp_path: Path) -> None:
    summary = VideoRecorder(tmp_path, LABELS, annotate_mp4=True).close()
    assert summary.frames == 0 and summary.tracks == ()
    assert "annotated_mp4" not in summary.files and "timelines" not in summary.files
    assert read_csv(tmp_path / "frames.csv") == []
    assert pq.read_table(tmp_path / "frames.parquet").num_rows == 0


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        VideoRecorder(tmp_path, ())
    with pytest.raises(InvalidInput):
        VideoRecorder(tmp_path, LABELS, fps=0.0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidInput, match="cannot create"):
        VideoRecorder(blocker / "sub", LABELS)


def test_without_pyarrow_only_the_csv_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    import emolens.video.outputs as outputs

    def missing(*args, **kw):
        raise ImportError("No module named 'pyarrow'")

    monkeypatch.setattr(outputs, "_ParquetSink", missing)
    rec = VideoRecorder(tmp_path, LABELS, timelines=False)
    for f in sequence():
        rec.add(f)
    summary = rec.close()
    assert "frames_parquet" not in summary.files and not (tmp_path / "frames.parquet").exists()
    assert len(read_csv(tmp_path / "frames.csv")) == 6
    assert "pyarrow" in caplog.text

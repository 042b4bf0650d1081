"""``emolens video``: outputs, formats, bad input and exit codes, Ctrl-C with results kept."""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emolens.cli import main
from emolens.errors import InvalidInput, UnsupportedMedia

from ..inference.modelfactory import make_model
from ..video.synth import write_video

GATES = "youtubefaces_0492_03_009_bill_gates.avi"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("cli-video") / "tiny.onnx")


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s video without faces."""
    return write_video(tmp_path_factory.mktemp("clips") / "blank.avi", 50, fps=25.0)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_video_without_faces_writes_empty_outputs(tmp_path: Path, model: Path, blank: Path, capsys) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(["video", str(blank), "--model", str(model), "--detector", "haar", "--out", str(out),
                             "--no-show", "-f", "json"], capsys)
    assert code == 0
    body = json.loads(stdout)
    assert body["frames"] == 50 and body["tracks"] == [] and body["interrupted"] is False
    assert body["source"] == str(blank)
    assert rows(out / "frames.csv") == [] and rows(out / "tracks.csv") == []
    assert json.loads((out / "summary.json").read_text())["frames"] == 50
    assert "50 frames" in err and "0 track(s)" in err


def test_jsonl_streams_one_line_per_frame(model: Path, blank: Path, capsys) -> None:
    code, stdout, _ = run(["video", str(blank), "--model", str(model), "--detector", "haar", "-f", "jsonl",
                           "--max-seconds", "0.5", "--every", "2"], capsys)
    assert code == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [x["index"] for x in lines] == list(range(13))
    assert [x["classified"] for x in lines[:4]] == [True, False, True, False]


def test_real_clip_with_every_option(tmp_path: Path, model: Path, shared_data: Path, capsys) -> None:
    clip = shared_data / "media" / "videos" / GATES
    out = tmp_path / "gates"
    code, stdout, err = run(["video", str(clip), "--model", str(model), "--out", str(out), "--annotate", "--blur",
                             "--every", "3", "--smoothing", "0.5", "--max-seconds", "2", "--summary-every", "0"],
                            capsys)
    assert code == 0, err
    assert "#1" in stdout and "1 face track(s)" in stdout
    frames = rows(out / "frames.csv")
    assert len(frames) >= 45 and {r["track_id"] for r in frames} == {"1"}
    assert [r["classified"] for r in frames[:6]] == ["1", "0", "0", "1", "0", "0"]
    assert (out / "annotated.mp4").stat().st_size > 0 and (out / "frames.parquet").is_file()
    assert (out / "timelines" / "track_1.png").is_file()
    assert len(rows(out / "tracks.csv")) == 1


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        ([], InvalidInput.exit_code, "exactly one"),
        (["x.mp4", "--webcam", "0"], InvalidInput.exit_code, "exactly one"),
        (["{blank}", "--annotate"], InvalidInput.exit_code, "--out"),
        (["{text}"], UnsupportedMedia.exit_code, "notes.mp4"),
        (["{empty}"], UnsupportedMedia.exit_code, "empty"),
        (["{tmp}/missing.mp4"], UnsupportedMedia.exit_code, "no such video file"),
        (["--webcam", "99"], UnsupportedMedia.exit_code, "webcam 99"),
        (["{blank}", "--every", "0"], 2, "every"),
        (["{blank}", "--smoothing", "1.5"], 2, "smoothing"),
    ],
    ids=["no-source", "two-sources", "annotate-no-out", "text-as-mp4", "zero-length", "missing", "no-webcam",
         "every-0", "smoothing-1.5"],
)
def test_bad_input_exits_with_a_clear_message(tmp_path: Path, model: Path, blank: Path, capsys, argv, code,
                                              message) -> None:
    (tmp_path / "notes.mp4").write_text("meeting notes, not a video\n" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    names = {"blank": str(blank), "text": str(tmp_path / "notes.mp4"), "empty": str(tmp_path / "empty.mp4"),
             "tmp": str(tmp_path)}
    argv = [a.format(**names) for a in argv]
    got, out, err = run(["video", *argv, "--model", str(model), "--detector", "haar"], capsys)
    assert got == code
    assert message in out + err


def _start(cmd: list[str]) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOLENS_")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # stderr line by line, then None at its end
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _interrupt_after_first_summary(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> tuple[str, str]:
    """Wait for the first periodic summary line, send SIGINT; returns (stdout, all of stderr)."""
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if " video] " in line:  # a periodic summary: frames are flowing
            break
    assert proc.poll() is None, "the command ended before it could be interrupted:\n" + "".join(seen)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    while (line := lines.get(timeout=10)) is not None:
        seen.append(line)
    return stdout, "".join(seen)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_ctrl_c_stops_cleanly_with_results_written(tmp_path: Path, model: Path, blank: Path, source: str,
                                                   request: pytest.FixtureRequest) -> None:
    if source == "real":
        clip = request.getfixturevalue("shared_data") / "media" / "videos" / GATES
        detector = "auto"
    else:
        clip, detector = blank, "haar"
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "emolens", "video", str(clip), "--model", str(model), "--detector", detector,
           "--out", str(out), "--loop", "1000", "--summary-every", "0.3", "--no-show", "-f", "json"]
    proc, lines = _start(cmd)
    stdout, stderr = _interrupt_after_first_summary(proc, lines)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    body = json.loads(stdout)
    assert body["interrupted"] is True and body["frames"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == body["frames"]
    assert len(rows(out / "frames.csv")) == summary["face_rows"]
    if source == "real":
        assert summary["face_rows"] > 0 and summary["tracks_count"] >= 1
        assert (out / "frames.parquet").stat().st_size > 0


def test_show_without_a_display_falls_back_to_headless(model: Path, blank: Path, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = run(["video", str(blank), "--model", str(model), "--detector", "haar", "--show",
                        "--max-seconds", "0.2"], capsys)
    assert code == 0
    assert "no display" in err and "running headless" in err

"""Hostile files for the command line: a FIFO, a symlink loop, an unreadable folder, a full disk,
a damaged JPEG, a one-class dataset, a run killed in its first epoch. Each ends in a named warning
or error and the right exit code; nothing hangs and no traceback is printed (issue 16, items 5-8)."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emolens.campaign.outputs import write_table
from emolens.cli import main
from emolens.fsio import OutputError, atomic_open, write_text
from emolens.inference.imageio import jpeg_damage, load_image
from emolens.partial import PARTIAL_EXIT_CODE

from ..cli.test_analyze_cli import _crop
from ..inference.modelfactory import make_model, tiny_meta

REPO = Path(__file__).resolve().parents[2]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("model") / "tiny.onnx", tiny_meta())


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    _crop(root / "a.png", "left")
    _crop(root / "sub" / "b.jpg", "right")
    return root


def run_cli(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``emolens ARGS`` in a child process: a hang fails the test at ``timeout`` instead of blocking it."""
    code = f"import sys; from emolens.cli import main; sys.exit(main({[str(a) for a in args]!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


@needs_fifo
def test_analyze_skips_a_fifo_named_like_a_photo_and_reads_the_rest(folder: Path, model: Path) -> None:
    os.mkfifo(folder / "trap.jpg")
    os.mkfifo(folder / "sub" / "trap2.png")
    done = run_cli("analyze", folder, "--model", model, "--cropped", "-f", "jsonl", timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2  # both real images
    assert "trap.jpg: skipped: is a FIFO" in done.stderr and "trap2.png: skipped: is a FIFO" in done.stderr
    alone = run_cli("analyze", folder / "trap.jpg", "--model", model, timeout=60)
    assert alone.returncode == 2 and "FIFO" in alone.stderr


def test_analyze_survives_symlink_loops(folder: Path, model: Path) -> None:
    (folder / "loop.jpg").symlink_to(folder / "loop2.jpg")
    (folder / "loop2.jpg").symlink_to(folder / "loop.jpg")
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a folder loop: not followed
    done = run_cli("analyze", folder, "--model", model, "--cropped", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert "loop.jpg: skipped: cannot be read" in done.stderr
    import json

    body = json.loads(done.stdout)
    assert len(body["images"]) == 2 and any("loop" in e["source"] for e in body["errors"])


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any folder")
def test_analyze_names_an_unreadable_sub_folder(folder: Path, model: Path) -> None:
    locked = folder / "locked"
    locked.mkdir()
    _crop(locked / "c.png", "left")
    locked.chmod(0)
    try:
        done = run_cli("analyze", folder, "--model", model, "--cropped", "-f", "jsonl")
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0 and "locked: skipped: folder cannot be read" in done.stderr


def test_the_walk_reports_an_unreadable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emolens.cli import walk

    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.jpg").write_bytes(b"x")
    real_walk = os.walk

    def walk_with_error(top: Any, onerror: Any = None, **kw: Any) -> Any:
        onerror(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "locked")))
        return real_walk(top, onerror=onerror, **kw)

    monkeypatch.setattr(walk.os, "walk", walk_with_error)
    skipped: list[tuple[Path, str]] = []
    found = list(walk.scan_folder(tmp_path, True, lambda p: True, lambda p, why: skipped.append((p, why))))
    assert found == [tmp_path / "ok" / "a.jpg"]
    assert skipped == [(tmp_path / "locked", "folder cannot be read (Permission denied)")]


def test_annotate_failures_are_reported_and_the_run_goes_on(folder: Path, model: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    def full_disk(path: str, *args: Any) -> bool:
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(cv2, "imwrite", full_disk)
    code = main(["analyze", str(folder), "--model", str(model), "--cropped", "-f", "jsonl",
                 "--annotate", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == PARTIAL_EXIT_CODE and len(out.splitlines()) == 2  # every result, no copy
    assert err.count("warning:") == 2 and "the disk is full" in err and "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []  # no 0-byte or half copies


def test_a_full_disk_leaves_no_empty_or_half_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = pd.DataFrame({"a": range(5)})
    write_table(df, tmp_path, "viewer_seconds", parquet=False)
    before = (tmp_path / "viewer_seconds.csv").read_bytes()

    def full(self: Any, path: Any, *args: Any, **kw: Any) -> None:
        Path(path).write_bytes(b"a\n0\n")  # half written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(OutputError, match=r"viewer_seconds\.csv: the disk is full"):
        write_table(pd.DataFrame({"a": range(9)}), tmp_path, "viewer_seconds", parquet=False)
    assert (tmp_path / "viewer_seconds.csv").read_bytes() == before  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["viewer_seconds.csv"]  # no temporary left


def test_a_real_full_device_is_a_named_error(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with pytest.raises(OutputError, match="the disk is full"), atomic_open(tmp_path / "x.csv", "w") as fh:
        fh.write("header\n")
        with open("/dev/full", "w") as full:  # the kernel's always-full device: a real ENOSPC
            full.write("x" * 100_000)
            full.flush()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_outputs_are_named_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="a part of its path is not a folder"):
        write_text(blocker / "summary.json", "{}")
    from emolens.campaign.run import analyze_campaign

    from ..jobs.test_campaign_job import fake_analyser, write_campaign

    manifest = write_campaign(tmp_path / "c")
    with pytest.raises(OutputError, match="cannot write"):
        analyze_campaign(manifest, blocker / "out", fake_analyser(), progress=False)


def _jpeg(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = (rng.random((120, 160, 3)) * 60 + np.linspace(0, 180, 160)[None, :, None]).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_a_jpeg_with_garbage_mid_stream_is_flagged(caplog: pytest.LogCaptureFixture) -> None:
    data = _jpeg()
    assert jpeg_damage(data) is None and load_image(data).warnings == ()
    mid = len(data) // 2
    damaged = data[:mid] + b"\xff\x00\x11\xff\xd5\x22" + data[mid:]  # a restart marker out of sequence
    loaded = load_image(damaged, name="shot.jpg")
    assert loaded.warnings and "damaged JPEG data" in loaded.warnings[0] and "shot.jpg" in loaded.warnings[0]
    assert "damaged JPEG data" in caplog.text
    assert "bytes after the end marker" in (jpeg_damage(data + b"garbage" * 10) or "")
    pytest.importorskip("av", reason="Huffman-level checks need PyAV")
    rng = np.random.default_rng(1)
    garbage = bytes(b if b != 0xFF else 0x11 for b in rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    for bad in (data[:mid] + garbage + data[mid:], data[:mid] + garbage + data[mid + len(garbage):]):
        assert load_image(bad).warnings, "garbage without any 0xFF byte must be flagged too"
    assert "ends inside a scan" in (jpeg_damage(data[:-2]) or "")


@needs_fifo
def test_load_image_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    from emolens.errors import UnsupportedMedia

    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(UnsupportedMedia, match="not a regular file"):
        load_image(tmp_path / "pipe.jpg")


def _dataset_csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    lines += [f"{k},{' '.join(map(str, rng.integers(0, 255, 48 * 48)))},{usage}" for k, usage in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("rows", "words"), [
    ([(3, "Training")] * 40 + [(3, "PublicTest")] * 12 + [(3, "PrivateTest")] * 12, "needs at least two classes"),
    ([(3, "Training"), (4, "Training"), (3, "Training"), (3, "PublicTest"), (4, "PrivateTest")],
     "the train split has 3 rows"),
])
def test_training_on_one_class_or_three_rows_is_refused(tmp_path: Path, rows: list[tuple[int, str]],
                                                       words: str) -> None:
    data = _dataset_csv(tmp_path / "d.csv", rows)
    done = run_cli("train", "--data", data, "--arch", "seed_cnn", "--epochs", "1", "--out", tmp_path / "run",
                   "--no-progress", "--threads", "1", timeout=300)
    assert done.returncode == 5 and words in done.stderr, done.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


def test_resume_after_a_kill_in_the_first_epoch_starts_again(tmp_path: Path) -> None:
    from emolens.config import TrainConfig
    from emolens.train.loop import open_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")  # what a run killed before its first checkpoint leaves
    resumed: list[bool] = []
    open_run(run, TrainConfig(), resume=True, do_resume=lambda: resumed.append(True))
    assert resumed == [] and (run / "config.yaml").is_file()
    (run / "last.pt").write_bytes(b"checkpoint")
    open_run(run, TrainConfig(), resume=True, do_resume=lambda: resumed.append(True))
    assert resumed == [True]


def test_no_cli_hang_or_traceback_on_a_manifest_bomb(tmp_path: Path) -> None:
    bomb = textwrap.dedent("""\
        a: &a ["xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
        ads: [{name: A, duration_s: *f}]
        recordings: []
        """)
    (tmp_path / "bomb.yaml").write_text(bomb)
    (tmp_path / "deep.yaml").write_text("ads: " + "[" * 20_000 + "]" * 20_000 + "\n")
    for name in ("bomb.yaml", "deep.yaml"):
        done = run_cli("campaign", "analyze", tmp_path / name, "--out", tmp_path / "out", timeout=120)
        assert done.returncode == 2 and len(done.stderr) < 5000, done.stderr


def test_a_truncated_video_is_a_partial_result_with_exit_8(tmp_path: Path) -> None:
    import json

    import cv2

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(40):
        writer.write((rng.random((48, 64, 3)) * 255).astype(np.uint8))
    writer.release()
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.4)])  # the header still announces 40 frames
    done = run_cli("video", cut, "--format", "json", "--no-progress", "--out", tmp_path / "out", timeout=300)
    assert done.returncode == PARTIAL_EXIT_CODE, done.stderr
    body = json.loads(done.stdout)
    assert body["warnings"] and "never came" in body["warnings"][0] and "partial:" in done.stderr
    assert (tmp_path / "out" / "frames.csv").is_file()  # the outputs of what was read are written
    whole = run_cli("video", clip, "--format", "json", "--no-progress", timeout=300)
    assert whole.returncode == 0 and json.loads(whole.stdout)["warnings"] == []


@needs_fifo
def test_video_refuses_a_fifo_instead_of_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "live.mp4")
    done = run_cli("video", tmp_path / "live.mp4", "--no-progress", timeout=120)
    assert done.returncode == 3 and "is a FIFO, not a video file" in done.stderr


def test_damaged_jpeg_warning_reaches_the_result_and_the_json(tmp_path: Path) -> None:
    """The warning is part of the result every consumer shares (CLI JSON, API), not only a log line."""
    from emolens.inference.analyzer import Analyzer

    from ..inference.modelfactory import make_model

    data = _jpeg()
    mid = len(data) // 2
    damaged = data[:mid] + b"\xff\x00\x11\xff\xd5\x22" + data[mid:]
    an = Analyzer(make_model(tmp_path / "tiny.onnx"), keypoints=False)
    res = an.analyze(damaged, source="shot.jpg")
    assert res.warnings and "damaged JPEG data" in res.warnings[0]
    assert res.to_dict()["warnings"] == list(res.warnings)
    (many,) = list(an.analyze_many([("shot.jpg", damaged)]))
    assert many.warnings == res.warnings
    assert an.analyze(data).to_dict()["warnings"] == []

"""``emolens video A B ... --out ROOT`` in one process: one folder per file (ROOT/<name>/), the same files as
one file at a time, a bad file reported while the others go on (exit 8), none readable (its exit code), the
options that follow a single video refused; ``--ray`` without the cluster extra names the extra (exit 11),
for ``emolens video``, ``emolens campaign analyze`` and ``emolens analyze``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from emolens.cli import main
from emolens.errors import InvalidInput, MissingExtra, UnsupportedMedia
from emolens.partial import PARTIAL_EXIT_CODE

from ..inference.modelfactory import make_model
from ..video.synth import write_video

SAME_FILES = ("frames.csv", "seconds.csv", "tracks.csv")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("cli-video-batch") / "tiny.onnx")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two 1 s clips with the same name in two folders (a moving bright square; haar finds no face in it)."""
    root = tmp_path_factory.mktemp("batch-clips")
    (root / "a").mkdir()
    (root / "b").mkdir()
    return [write_video(root / "a" / "clip.avi", [[(40, 30, 40, "left")]] * 10, fps=10.0),
            write_video(root / "b" / "clip.avi", 10, fps=10.0)]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_several_files_write_one_folder_each(tmp_path: Path, model: Path, clips: list[Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--model", str(model), "--detector", "haar", "--no-progress", "--summary-every", "0"]
    code, out, err = run(["video", *map(str, clips), "--out", str(tmp_path / "root"), *common], capsys)
    assert code == 0, err
    assert f"{clips[0]}: 0 face track(s)" in out and f"{clips[1]}: 0 face track(s)" in out
    assert "2 of 2 video(s) analysed, 0 failed" in err
    for clip, folder in zip(clips, ("clip", "clip_2"), strict=True):  # the same as one file at a time
        assert run(["video", str(clip), "--out", str(tmp_path / "one" / folder), *common], capsys)[0] == 0
        for f in SAME_FILES:
            assert (tmp_path / "root" / folder / f).read_bytes() == (tmp_path / "one" / folder / f).read_bytes()
        summary = json.loads((tmp_path / "root" / folder / "summary.json").read_text())
        assert summary["frames"] == 10


def test_a_bad_file_is_reported_and_the_run_is_partial(tmp_path: Path, model: Path, clips: list[Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "notes.mp4"
    broken.write_text("meeting notes, not a video\n" * 20)
    code, out, err = run(["video", str(clips[0]), str(broken), str(clips[1]), "--out", str(tmp_path / "root"),
                          "--model", str(model), "--detector", "haar", "--no-progress", "-f", "json"], capsys)
    assert code == PARTIAL_EXIT_CODE
    body = json.loads(out)
    assert [v["source"] for v in body["videos"]] == [str(clips[0]), str(clips[1])]
    assert body["errors"] == [{"source": str(broken), "error": "UnsupportedMedia",
                               "message": body["errors"][0]["message"]}]
    assert "notes.mp4" in body["errors"][0]["message"] and "error: " in err and "notes.mp4" in err
    assert "partial: 1 video(s) could not be read" in err
    assert (tmp_path / "root" / "clip" / "frames.csv").is_file() and (tmp_path / "root" / "clip_2").is_dir()
    assert not (tmp_path / "root" / "notes").exists()


def test_no_readable_file_exits_with_its_error(tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.mp4").write_text("not a video\n" * 20)
    (tmp_path / "b.mp4").write_bytes(b"")
    code, _, err = run(["video", str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "--model", str(model),
                        "--detector", "haar", "--no-progress"], capsys)
    assert code == UnsupportedMedia.exit_code and "none of the 2 video(s) could be read" in err


@pytest.mark.parametrize(("extra", "message"), [
    (["-f", "jsonl"], "jsonl"), (["--show"], "--show"), (["--ray"], "--out ROOT")])
def test_options_for_one_live_video_are_refused_with_several(model: Path, clips: list[Path], extra: list[str],
                                                             message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["video", *map(str, clips), "--model", str(model), *extra], capsys)
    assert code == InvalidInput.exit_code and message in out + err


def test_ray_without_the_cluster_extra_names_it(tmp_path: Path, model: Path, clips: list[Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as it does without the package
    code, _, err = run(["video", *map(str, clips), "--out", str(tmp_path / "o"), "--model", str(model), "--ray"],
                       capsys)
    assert code == MissingExtra.exit_code and "emolens[cluster]" in err and not (tmp_path / "o").exists()
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"ads:\n  - {{name: one, duration_s: 1}}\nrecordings:\n"
                        f"  - {{viewer: v1, ad: one, recording: {clips[0]}}}\n")
    code, _, err = run(["campaign", "analyze", str(manifest), "--out", str(tmp_path / "c"), "--no-norms",
                        "--ray-address", "ray://head:10001"], capsys)
    assert code == MissingExtra.exit_code and "emolens[cluster]" in err
    cv2.imwrite(str(tmp_path / "face.png"), np.zeros((48, 48), np.uint8))
    code, out, err = run(["analyze", str(tmp_path / "face.png"), "--model", str(model), "--ray", "-f", "json"],
                         capsys)
    assert code == MissingExtra.exit_code and "emolens[cluster]" in err
    assert out == ""  # refused before any output starts: no half-written JSON

"""Hostile campaign manifests: each is refused with a named, short ManifestError, never a crash,
a hang, a huge message or unbounded memory (issue 16, items 1, 2, 4 and 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emolens import safeyaml
from emolens.campaign.manifest import (
    MAX_AD_DURATION_S,
    MAX_ADS,
    MAX_BOOTSTRAP_AD_SECONDS,
    MAX_VIEWER_SECONDS,
    ManifestError,
    check_budget,
    load_manifest,
)
from emolens.errors import InvalidInput

from ..jobs.test_campaign_job import write_campaign


def problems_of(path: Path) -> str:
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    text = str(info.value)
    assert len(text) < 20_000, f"a {len(text)}-character message"  # never echoes a bomb back
    return text


def manifest(folder: Path, body: str, name: str = "m.yaml") -> Path:
    write_campaign(folder)  # the recordings the VIEWERS manifest names exist
    path = folder / name
    path.write_text(body)
    return path


def one_ad(duration: str, extra: str = "") -> str:
    return (f"ads:\n  - {{name: A, duration_s: {duration}}}\nrecordings:\n"
            f"  - {{viewer: v1, ad: A, recording: recordings/v1.mp4{extra}}}\n")


@pytest.mark.parametrize("duration", ["1e9", "1e6", str(MAX_AD_DURATION_S + 1), "1e-300", "0.5", "true", "false",
                                      "[1, 2]", "{a: 1}", ".nan", ".inf", "-3"])
def test_ad_durations_out_of_range_or_not_numbers_are_refused(tmp_path: Path, duration: str) -> None:
    text = problems_of(manifest(tmp_path, one_ad(duration)))
    assert "line 2:" in text and "duration_s of ad 'A'" in text


def test_an_ad_longer_than_its_own_video_is_refused(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    video = tmp_path / "ad.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for _ in range(20):  # 2 s
        writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    body = one_ad("30").replace("duration_s: 30}", "duration_s: 30, video: ad.avi}")
    assert "lasts 2.00 s" in problems_of(manifest(tmp_path, body))


def _bomb(levels: int, at: str) -> str:
    lines = ['a0: &a0 ["xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx","xxxxxxxxxx"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + at.replace("BOMB", f"*a{levels - 1}")


@pytest.mark.parametrize("at", [
    "ads:\n  - {name: A, duration_s: BOMB}\nrecordings: []\n",
    "ads:\n  - {name: A, duration_s: 2}\nrecordings:\n  - {viewer: v1, ad: A, recording: recordings/v1.mp4, "
    "attributes: {segment: BOMB}}\n",
    "ads:\n  - {name: A, duration_s: 2}\nrecordings:\n  - {viewer: v1, ad: A, recording: recordings/v1.mp4, "
    "segment: BOMB}\n",
])
@pytest.mark.parametrize("levels", [4, 9])
def test_alias_bombs_are_refused_with_a_short_message(tmp_path: Path, at: str, levels: int) -> None:
    text = problems_of(manifest(tmp_path, _bomb(levels, at)))
    assert any(w in text for w in ("aliases expand", "must be a text", "must be a number", "unknown key"))


def test_recursive_alias_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    assert "recursive" in problems_of(manifest(tmp_path, "ads: &x [*x]\nrecordings: []\n"))
    deep = "ads: " + "[" * 20_000 + "]" * 20_000 + "\nrecordings: []\n"
    assert f"nested more than {safeyaml.MAX_DEPTH} levels" in problems_of(manifest(tmp_path, deep))
    deep_map = "ads: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n"
    assert "nested more than" in problems_of(manifest(tmp_path, deep_map))


@pytest.mark.parametrize("path", ["recordings/v1\x00.mp4", "a" * 5000 + ".mp4", "x/" * 3000 + "v.mp4",
                                  "recordings/" + "b" * 300 + ".mp4"])
def test_unusable_recording_paths_are_named_problems(tmp_path: Path, path: str) -> None:
    body = one_ad("2").replace("recordings/v1.mp4", repr(path).replace("\\x00", "\\0").replace("'", '"'))
    text = problems_of(manifest(tmp_path, body))
    assert "line 4:" in text and ("control character" in text or "too long" in text)


def test_csv_with_a_nul_or_a_huge_field_is_a_named_problem(tmp_path: Path) -> None:
    write_campaign(tmp_path)
    head = "viewer,ad,recording,ad_duration_s\n"
    (tmp_path / "nul.csv").write_text(head + "v1,A,recordings/v1.mp4\x00,2\n")
    assert "control character" in problems_of(tmp_path / "nul.csv")
    (tmp_path / "big.csv").write_text(head + "v1,A,recordings/v1.mp4,2," + "z" * 300_000 + "\n")
    assert "problem" in problems_of(tmp_path / "big.csv")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_neither_a_manifest_nor_a_recording(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    assert "not a regular file" in problems_of(tmp_path / "fifo.yaml")  # opening it would block forever
    write_campaign(tmp_path)
    os.mkfifo(tmp_path / "recordings" / "pipe.mp4")
    body = one_ad("2").replace("recordings/v1.mp4", "recordings/pipe.mp4")
    assert "not a regular file or folder" in problems_of(manifest(tmp_path, body))


def test_attributes_must_be_short_scalars(tmp_path: Path) -> None:
    assert "must be a text" in problems_of(manifest(tmp_path, one_ad("2", ", attributes: {segment: [1, 2]}")))
    assert "at most 200 characters" in problems_of(manifest(tmp_path, one_ad("2", ", segment: " + "y" * 500)))
    many = ", attributes: {" + ", ".join(f"k{i}: v" for i in range(40)) + "}"
    assert "at most 32 attributes" in problems_of(manifest(tmp_path, one_ad("2", many)))


def test_viewer_seconds_are_bounded_over_the_whole_campaign(tmp_path: Path) -> None:
    write_campaign(tmp_path)
    n = MAX_VIEWER_SECONDS // 3600 + 1
    rows = "".join(f"  - {{viewer: w{i}, ad: A, recording: recordings/v1.mp4}}\n" for i in range(n))
    (tmp_path / "many.yaml").write_text(f"ads:\n  - {{name: A, duration_s: 3600}}\nrecordings:\n{rows}")
    assert "viewer-seconds" in problems_of(tmp_path / "many.yaml")


def test_a_sound_manifest_still_loads(tmp_path: Path) -> None:
    m = load_manifest(manifest(tmp_path, one_ad("2.5", ", attributes: {segment: young, age: 30}")))
    assert m.ads[0].duration_s == 2.5 and m.recordings[0].attributes == {"segment": "young", "age": "30"}


def test_ads_and_their_seconds_are_bounded(tmp_path: Path) -> None:
    write_campaign(tmp_path)
    rec = "recordings:\n  - {viewer: v1, ad: a0, recording: recordings/v1.mp4}\n"
    many = "".join(f"  - {{name: a{i}, duration_s: 2}}\n" for i in range(MAX_ADS + 1))
    (tmp_path / "ads.yaml").write_text("ads:\n" + many + rec)
    assert f"the limit is {MAX_ADS}" in problems_of(tmp_path / "ads.yaml")
    long = "".join(f"  - {{name: a{i}, duration_s: 3600}}\n" for i in range(5))
    (tmp_path / "long.yaml").write_text("ads:\n" + long + rec)
    assert "the ads add up to 18000 s" in problems_of(tmp_path / "long.yaml")


def test_bootstrap_times_ad_seconds_is_bounded(tmp_path: Path) -> None:
    m = load_manifest(manifest(tmp_path, one_ad("3600")))
    check_budget(m, MAX_BOOTSTRAP_AD_SECONDS // 3600)
    with pytest.raises(InvalidInput, match="bootstrap <= 4444"):
        check_budget(m, 20_000)

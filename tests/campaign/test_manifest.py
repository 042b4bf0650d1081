"""Campaign manifests: YAML and CSV read right, every problem reported with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from emolens.campaign.manifest import ManifestError, load_manifest
from emolens.errors import InvalidInput
from tests.video.synth import write_video


@pytest.fixture()
def media(tmp_path: Path) -> Path:
    """A folder with two 2 s videos (25 fps), a photo folder and an empty folder."""
    (tmp_path / "rec").mkdir()
    write_video(tmp_path / "rec" / "v1.avi", 50, fps=25.0)
    write_video(tmp_path / "rec" / "v2.avi", 50, fps=25.0)
    write_video(tmp_path / "ad.avi", 25, fps=25.0)
    photos = tmp_path / "rec" / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"not decoded by the manifest")
    (photos / "notes.txt").write_text("ignored")
    (tmp_path / "rec" / "empty").mkdir()
    return tmp_path


GOOD = """\
campaign: Spring
ads:
  - name: spot_a
    duration_s: 1.5
    video: ad.avi
  - name: spot_b
    duration: 2
recordings:
  - viewer: v1
    ad: spot_a
    recording: rec/v1.avi
    offset_s: 0.5
    attributes: {segment: young, age_group: 18-24}
  - viewer: v2
    ad: spot_a
    recording: rec/v2.avi
    segment: old
  - viewer_id: v1
    ad: spot_b
    path: rec/photos
"""


def write(folder: Path, text: str, name: str = "m.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, InvalidInput) and info.value.exit_code == 2
    return info.value.problems


def test_yaml_manifest_is_read(media: Path) -> None:
    m = load_manifest(write(media, GOOD))
    assert m.name == "Spring"
    assert [(a.name, a.duration_s, a.seconds) for a in m.ads] == [("spot_a", 1.5, 2), ("spot_b", 2.0, 2)]
    assert m.ads[0].video == media / "ad.avi" and m.ads[1].video is None
    r1, r2, r3 = m.recordings
    assert (r1.viewer, r1.ad, r1.kind, r1.offset_s, r1.line) == ("v1", "spot_a", "video", 0.5, 9)
    assert r1.path == media / "rec" / "v1.avi"
    assert dict(r1.attributes) == {"segment": "young", "age_group": "18-24"}
    assert dict(r2.attributes) == {"segment": "old"} and r2.offset_s == 0.0
    assert (r3.viewer, r3.kind) == ("v1", "photos")
    assert m.attributes == ("segment", "age_group")
    assert m.ad("spot_b").duration_s == 2.0


def test_csv_manifest_is_read(media: Path) -> None:
    text = ("viewer,ad,recording,offset_s,ad_duration_s,ad_video,segment\n"
            "v1,spot_a,rec/v1.avi,0.5,1.5,ad.avi,young\n"
            "v2,spot_a,rec/v2.avi,,1.5,ad.avi,old\n"
            "v1,spot_b,rec/photos,,3,,young\n")
    m = load_manifest(write(media, text, "m.csv"))
    assert m.name == "m"
    assert [(a.name, a.duration_s, a.line) for a in m.ads] == [("spot_a", 1.5, 2), ("spot_b", 3.0, 4)]
    assert [(r.viewer, r.ad, r.kind, r.offset_s, r.line) for r in m.recordings] == [
        ("v1", "spot_a", "video", 0.5, 2), ("v2", "spot_a", "video", 0.0, 3), ("v1", "spot_b", "photos", 0.0, 4)]
    assert m.recordings[1].attributes == {"segment": "old"}


def test_every_yaml_problem_is_reported_with_its_line(media: Path) -> None:
    text = """\
ads:
  - name: spot_a
    duration_s: 0
  - name: spot_b
    duration_s: 2
    colour: red
  - name: spot_b
    duration_s: 3
recordings:
  - viewer: v1
    ad: spot_c
    recording: rec/v1.avi
  - viewer: v1
    ad: spot_b
    recording: rec/missing.avi
  - viewer: v2
    ad: spot_b
    recording: rec/v2.avi
    offset_s: 5
  - viewer: v3
    ad: spot_b
    recording: rec/v2.avi
    offset_s: -1
  - viewer: v2
    ad: spot_b
    recording: rec/v1.avi
  - viewer: v4
    ad: spot_b
    recording: rec/empty
  - viewer: v5
    ad: spot_b
    recording: rec/v1.avi
    ofset_s: 1
"""
    found = problems(write(media, text))
    expected = [
        ("line 2:", "duration_s of ad 'spot_a' must be between 1 and 3600 seconds"),
        ("line 4:", "unknown key 'colour' in an ad"),
        ("line 7:", "duplicate ad name 'spot_b' (first on line 4)"),
        ("line 10:", "unknown ad 'spot_c' (did you mean 'spot_b'?); ads: spot_b"),
        ("line 13:", "not found:"),
        ("line 16:", "offset_s 5 is beyond the end of v2.avi (2.00 s long)"),
        ("line 20:", "offset_s must be >= 0"),
        ("line 24:", "viewer 'v2' already has a recording for ad 'spot_b' (line 16)"),
        ("line 27:", "holds no images"),
        ("line 30:", "unknown key 'ofset_s' in a recording (did you mean 'offset_s'?)"),
    ]
    for line, text_part in expected:
        assert any(p.startswith(line) and text_part in p for p in found), (line, text_part, found)


def test_duplicate_viewer_is_reported_even_when_the_first_is_fine(media: Path) -> None:
    text = GOOD + "  - viewer: v2\n    ad: spot_a\n    recording: rec/v1.avi\n"
    assert problems(write(media, text)) == [
        "line 21: viewer 'v2' already has a recording for ad 'spot_a' (line 14)"]


def test_csv_problems_name_the_row_line(media: Path) -> None:
    text = ("viewer,ad,recording,ofset_s,ad_duration_s\n"
            "v1,spot_a,rec/v1.avi,,2\n"
            "v2,spot_a,rec/v2.avi,,3\n"
            "v3,spot_x,rec/v2.avi,,3\n"
            "v4,spot_b,rec/v2.avi,,abc\n")
    found = problems(write(media, text, "m.csv"))
    assert any(p.startswith("line 2:") and "unknown key 'ofset_s'" in p for p in found)
    assert any(p.startswith("line 3:") and "described differently on line 2" in p for p in found)
    assert any(p.startswith("line 5:") and "duration_s of ad 'spot_b' must be a number" in p for p in found)
    assert any(p.startswith("line 5:") and "unknown ad 'spot_b'" in p for p in found)


def test_csv_missing_columns(media: Path) -> None:
    found = problems(write(media, "viewer,recording\nv1,rec/v1.avi\n", "m.csv"))
    assert found == ["line 1: missing column 'ad' (columns: viewer, recording)",
                     "line 1: missing column 'ad_duration_s' (columns: viewer, recording)"]


@pytest.mark.parametrize(("text", "needle"), [
    ("ads: []\nrecordings: []\n", "the campaign is empty"),
    ("ads:\n  - name: a\n    duration_s: 1\n", "no 'recordings' list"),
    ("- 1\n- 2\n", "must be a mapping"),
    ("ads: [\n", "not valid YAML"),
    ("ads: []\nrecordings: []\nextra: 1\n", "unknown key 'extra' in the manifest"),
])
def test_malformed_yaml(media: Path, text: str, needle: str) -> None:
    assert any(needle in p for p in problems(write(media, text)))


def test_missing_or_unknown_manifest_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.yaml") == ["the manifest file does not exist"]
    assert "unknown manifest type '.txt'" in problems(write(tmp_path, "x", "m.txt"))[0]


def test_an_undecodable_recording_is_not_a_manifest_error(media: Path) -> None:
    (media / "rec" / "broken.mp4").write_bytes(b"garbage")
    text = ("ads:\n  - name: a\n    duration_s: 1\nrecordings:\n"
            "  - viewer: v\n    ad: a\n    recording: rec/broken.mp4\n")
    m = load_manifest(write(media, text))
    assert m.recordings[0].kind == "video"

"""The ``campaign`` job: manifest confinement to a root, server paths scrubbed, the content-keyed
cache shared by jobs, progress per recording, stopping between recordings, cleanup.

Recordings are small files of known bytes analysed by the campaign tests' fake analyser (known
per-frame probabilities, calls counted), so each test runs in a second.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emolens.campaign.manifest import ManifestError
from emolens.campaign.recording import FrameCache
from emolens.errors import InvalidInput
from emolens.jobs.campaign import (
    CAMPAIGN_KIND,
    JobAnalyser,
    OutsideDataRoot,
    Scrubber,
    campaign_kind,
    load_confined,
    referenced_paths,
)
from emolens.jobs.models import SHUT_DOWN, JobState
from emolens.jobs.runner import JobInterrupted, JobRunner
from emolens.jobs.store import JobStore
from tests.campaign.fakes import FakeAnalyser, frame, probs

WAIT = 60.0
VIEWERS = {  # viewer -> (ad, recording relative to the manifest, dominant emotion, segment)
    "v1": ("A", "recordings/v1.mp4", "happiness", "young"),
    "v2": ("A", "recordings/v2.mp4", "anger", "old"),
    "v3": ("B", "recordings/v3.mp4", "happiness", "young"),
    "v4": ("B", "recordings/v4.mp4", "sadness", "old"),
    "v5": ("B", "photos/v5", "happiness", "old"),
}


def manifest_text(viewers: dict[str, tuple[str, str, str, str]] = VIEWERS, extra: str = "") -> str:
    lines = ["campaign: spring", "ads:", "  - {name: A, duration_s: 3}", "  - {name: B, duration_s: 3}",
             "recordings:"]
    lines += [f"  - {{viewer: {v}, ad: {ad}, recording: {rec}, segment: {seg}}}"
              for v, (ad, rec, _, seg) in viewers.items()]
    return "\n".join(lines) + "\n" + extra


def rec_line(viewer: str, ad: str, recording: str) -> str:
    """One more recording line for :func:`manifest_text`'s ``extra`` (it becomes line 11)."""
    return f"  - {{viewer: {viewer}, ad: {ad}, recording: '{recording}'}}\n"


def recording_files(viewers: dict[str, tuple[str, str, str, str]] = VIEWERS) -> dict[str, bytes]:
    """Relative path -> bytes of every file the manifest names (photo folders hold two photos)."""
    files: dict[str, bytes] = {}
    for v, (_, rec, _, _) in viewers.items():
        if rec.endswith(".mp4"):
            files[rec] = f"video of {v}".encode()
        else:
            files[f"{rec}/1.jpg"], files[f"{rec}/2.jpg"] = f"{v} photo 1".encode(), f"{v} photo 2".encode()
    return files


def write_campaign(folder: Path, viewers: dict[str, tuple[str, str, str, str]] = VIEWERS,
                   name: str = "campaign.yaml") -> Path:
    for rel, data in recording_files(viewers).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / name).write_text(manifest_text(viewers))
    return folder / name


def fake_analyser(viewers: dict[str, tuple[str, str, str, str]] = VIEWERS) -> FakeAnalyser:
    """Rows for every recording: a face every half second showing its viewer's emotion."""
    rows = {}
    for _, (_, rec, emotion, _) in viewers.items():
        name = Path(rec).name
        if rec.endswith(".mp4"):
            rows[name] = [frame(t / 2, probs(emotion, 0.7)) for t in range(6)]
        else:
            rows[name] = [frame(i, probs(emotion, 0.8), source=f"{i + 1}.jpg") for i in range(2)]
    return FakeAnalyser(rows)


class FakeContext:
    """What JobAnalyser uses of a JobContext: check() and report(); stops after ``stop_after`` reports."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.reports: list[tuple[float | None, str | None, dict[str, Any]]] = []
        self.stop_after = stop_after

    def check(self) -> None:
        if self.stop_after is not None and len(self.reports) >= self.stop_after:
            raise JobInterrupted(SHUT_DOWN)

    def report(self, progress: float | None = None, message: str | None = None, **details: Any) -> None:
        self.check()
        self.reports.append((progress, message, details))


# ------------------------------------------------------------------ confinement


def test_referenced_paths_of_yaml_with_merge_keys_and_of_csv(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "base: &b {recording: ../secret.mp4}\nads:\n  - {name: A, duration_s: 2, video: ads/a.mp4}\n"
        "recordings:\n  - {viewer: v1, ad: A, file: r/v1.mp4}\n  - viewer: v2\n    ad: A\n    <<: *b\n")
    assert referenced_paths(tmp_path / "m.yaml") == [(3, "ads/a.mp4"), (5, "r/v1.mp4"), (6, "../secret.mp4")]
    (tmp_path / "m.csv").write_text("viewer,ad,path,ad_duration_s,ad_video\nv1,A,r/v1.mp4,2,ads/a.mp4\nv2,A,/x,2,\n")
    assert referenced_paths(tmp_path / "m.csv") == [(2, "r/v1.mp4"), (2, "ads/a.mp4"), (3, "/x")]


def test_a_manifest_inside_its_root_loads(tmp_path: Path) -> None:
    m = load_confined(write_campaign(tmp_path), tmp_path, "data_root", "campaign.yaml")
    assert [r.viewer for r in m.recordings] == list(VIEWERS)


@pytest.mark.parametrize("path", ["../outside.mp4", "/etc/hostname", "~/x.mp4", "recordings/../../outside.mp4"])
def test_paths_leading_out_of_the_data_root_are_refused_naming_the_line(tmp_path: Path, path: str) -> None:
    root = tmp_path / "root"
    write_campaign(root)
    (tmp_path / "outside.mp4").write_bytes(b"secret")
    manifest = root / "campaign.yaml"
    manifest.write_text(manifest_text(extra=f"  - {{viewer: v9, ad: A, recording: '{path}'}}\n"))
    with pytest.raises(OutsideDataRoot, match=r"line 11: ") as err:
        load_confined(manifest, root, "data_root", "campaign.yaml")
    assert str(tmp_path) not in str(err.value).replace(path, "")


def test_missing_and_existing_outside_files_get_the_same_answer(tmp_path: Path) -> None:
    """No oracle: a client cannot learn whether a file outside the root exists."""
    root = tmp_path / "root"
    write_campaign(root)
    (tmp_path / "exists.mp4").write_bytes(b"x")
    answers = []
    for name in ("exists.mp4", "missing.mp4"):
        (root / "campaign.yaml").write_text(manifest_text(extra=f"  - {{viewer: v9, ad: A, recording: ../{name}}}\n"))
        with pytest.raises(OutsideDataRoot) as err:
            load_confined(root / "campaign.yaml", root, "data_root", "campaign.yaml")
        answers.append(str(err.value).replace(name, "NAME"))
    assert answers[0] == answers[1]


def test_symlinks_escaping_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_campaign(root)
    (tmp_path / "outside.mp4").write_bytes(b"secret")
    (tmp_path / "photo.jpg").write_bytes(b"secret")
    os.symlink(tmp_path / "outside.mp4", root / "recordings" / "link.mp4")
    (root / "photos" / "v6").mkdir()
    os.symlink(tmp_path / "photo.jpg", root / "photos" / "v6" / "1.jpg")
    expected = {"recordings/link.mp4": "line 11: 'recordings/link.mp4' is outside",
                "photos/v6": "line 11: the recording of viewer 'v6' is outside"}  # a photo in the folder
    for rec, words in expected.items():
        (root / "campaign.yaml").write_text(manifest_text(extra=f"  - {{viewer: v6, ad: B, recording: {rec}}}\n"))
        with pytest.raises(OutsideDataRoot) as err:
            load_confined(root / "campaign.yaml", root, "data_root", "campaign.yaml")
        assert words in str(err.value)
        assert str(tmp_path) not in str(err.value)
    os.symlink(root / "recordings" / "v1.mp4", root / "recordings" / "inner.mp4")  # a link inside is fine
    (root / "campaign.yaml").write_text(manifest_text(extra=rec_line("v8", "A", "recordings/inner.mp4")))
    assert len(load_confined(root / "campaign.yaml", root, "data_root", "campaign.yaml").recordings) == 6


def test_an_upload_manifest_escaping_its_folder_is_invalid_input(tmp_path: Path) -> None:
    root = tmp_path / "files"
    write_campaign(root)
    (root / "campaign.yaml").write_text(manifest_text(extra="  - {viewer: v9, ad: A, recording: ../x.mp4}\n"))
    with pytest.raises(InvalidInput, match=r"campaign.yaml: the manifest names files outside the upload") as err:
        load_confined(root / "campaign.yaml", root, "upload", "campaign.yaml")
    assert not isinstance(err.value, OutsideDataRoot)
    assert "line 11: '../x.mp4' is outside" in str(err.value)


def test_manifest_errors_name_the_line_and_no_server_path(tmp_path: Path) -> None:
    write_campaign(tmp_path / "c")
    (tmp_path / "c" / "campaign.yaml").write_text(manifest_text(extra=rec_line("v9", "Z", "recordings/v9.mp4")))
    with pytest.raises(ManifestError) as err:
        load_confined(tmp_path / "c" / "campaign.yaml", tmp_path / "c", "upload", "my.yaml")
    text = str(err.value)
    assert text.startswith("my.yaml: 2 problem(s)")
    assert "line 11: unknown ad 'Z'" in text and "not found: recordings/v9.mp4" in text
    assert str(tmp_path) not in text


def test_scrubber_rewrites_server_paths_only_at_path_boundaries(tmp_path: Path) -> None:
    clean = Scrubber(tmp_path / "root", tmp_path / "work")
    root = str(tmp_path / "root")
    assert clean.text(f"{root}/rec/v1.mp4 failed") == "rec/v1.mp4 failed"
    assert clean.text(f"in '{root}'") == "in '.'"
    assert clean.text(f"{root}x/a") == f"{root}x/a"  # another folder that merely starts alike
    assert clean.text(f"{tmp_path / 'work'}/frames") == "<server>/frames"
    assert clean.json({"a": [f"{root}/x", 1, None]}) == {"a": ["x", 1, None]}


# ------------------------------------------------------------------ the analyser wrapper


def test_job_analyser_caches_by_content_and_reports_each_recording(tmp_path: Path) -> None:
    fake = fake_analyser()
    cache = FrameCache(tmp_path / "cache")
    write_campaign(tmp_path / "one")
    write_campaign(tmp_path / "two")  # the same bytes at other paths (a re-upload)
    ctx = FakeContext()
    first = JobAnalyser(fake, cache, ctx, total=2)
    a = first.analyse_video(tmp_path / "one/recordings/v1.mp4", 0.0, 3.0)
    first.analyse_photos([tmp_path / "one/photos/v5/1.jpg", tmp_path / "one/photos/v5/2.jpg"])
    assert (first.analysed, first.from_cache) == (2, 0)
    assert [r[:2] for r in ctx.reports] == [
        (0.475, "1/2 recordings"), (0.95, "2/2 recordings; computing KPIs, comparisons and the report")]
    assert ctx.reports[-1][2] == {"recordings_done": 2, "recordings_total": 2, "analysed": 2, "from_cache": 0}
    second = JobAnalyser(fake, cache, FakeContext(), total=3)
    b = second.analyse_video(tmp_path / "two/recordings/v1.mp4", 0.0, 3.0)
    second.analyse_video(tmp_path / "two/recordings/v1.mp4", 1.0, 3.0)  # another window: analysed again
    (tmp_path / "two/recordings/v2.mp4").write_bytes(b"changed")
    fake.rows["v2.mp4"] = fake.rows["v1.mp4"]
    second.analyse_video(tmp_path / "two/recordings/v2.mp4", 0.0, 3.0)
    assert a.equals(b)
    assert (second.analysed, second.from_cache) == (2, 1)
    assert fake.calls == {"v1.mp4": 2, "v5": 1, "v2.mp4": 1}


def test_job_analyser_stops_between_recordings(tmp_path: Path) -> None:
    from emolens.campaign.run import CampaignSettings, analyze_campaign

    fake = fake_analyser()
    analyser = JobAnalyser(fake, FrameCache(tmp_path / "cache"), FakeContext(stop_after=2), total=5)
    with pytest.raises(JobInterrupted):  # not swallowed as an unreadable recording
        analyze_campaign(write_campaign(tmp_path / "c"), tmp_path / "out", analyser, CampaignSettings(bootstrap=20),
                         cache_dir=tmp_path / "frames", progress=False)
    assert sum(fake.calls.values()) == 2


# ------------------------------------------------------------------ the job


@pytest.fixture()
def runner(tmp_path: Path) -> Iterator[tuple[JobRunner, FakeAnalyser]]:
    fake = fake_analyser()
    store = JobStore(tmp_path / "jobs")
    job_runner = JobRunner(store, [campaign_kind(lambda _s: fake, tmp_path / "jobs" / "campaign-cache")])
    job_runner.start()
    yield job_runner, fake
    job_runner.close()
    store.close()


def submit(runner: JobRunner, root: Path, work: Path, source: str = "upload") -> Any:
    work.mkdir(parents=True, exist_ok=True)
    params = {"source": source, "manifest": "campaign.yaml", "options": {"bootstrap": 50, "seed": 1},
              "_manifest": str(root / "campaign.yaml"), "_root": str(root), "_work": str(work)}
    return runner.wait_for(runner.submit(CAMPAIGN_KIND, params).id, timeout=WAIT)


def all_text(runner: JobRunner, job: Any) -> str:
    folder = runner.store.job_dir(job.id)
    texts = [str(job.to_dict())]
    texts += [(folder / n).read_text(errors="replace") for n in job.files if n.endswith((".json", ".csv", ".html"))]
    return "\n".join(texts)


def test_a_campaign_job_writes_every_output_without_server_paths(tmp_path: Path, runner: Any) -> None:
    job_runner, fake = runner
    root, work = tmp_path / "work" / "campaign-1" / "files", tmp_path / "work" / "campaign-1"
    write_campaign(root)
    job = submit(job_runner, root, work)
    assert job.state is JobState.SUCCEEDED, job.error
    assert {"summary.json", "series.csv", "kpis.csv", "qc.csv", "report.html"} <= set(job.files)
    result = job.result
    assert (result["recordings"], result["analysed"], result["from_cache"]) == (5, 5, 0)
    assert [ad["name"] for ad in result["summary"]["ads"]] == ["A", "B"]
    assert {q["recording"] for q in result["summary"]["qc"]} == {rec for _, rec, _, _ in VIEWERS.values()}
    assert job.details["recordings_done"] == 5
    text = all_text(job_runner, job)
    for private in (str(tmp_path), "_work", "_root"):
        assert private not in text
    assert not work.exists()  # the uploads are gone once the job has ended
    assert sum(fake.calls.values()) == 5


def test_resubmitting_with_one_more_viewer_analyses_only_that_viewer(tmp_path: Path, runner: Any) -> None:
    job_runner, fake = runner
    write_campaign(tmp_path / "w1" / "files")
    assert submit(job_runner, tmp_path / "w1" / "files", tmp_path / "w1").state is JobState.SUCCEEDED
    more = {**VIEWERS, "v6": ("A", "recordings/v6.mp4", "sadness", "young")}
    fake.rows.update(fake_analyser(more).rows)
    write_campaign(tmp_path / "w2" / "files", more)  # a new upload: other paths, same bytes
    job = submit(job_runner, tmp_path / "w2" / "files", tmp_path / "w2")
    assert job.state is JobState.SUCCEEDED, job.error
    assert (job.result["analysed"], job.result["from_cache"]) == (1, 5)
    assert fake.calls["v6.mp4"] == 1 and fake.calls["v1.mp4"] == 1


def test_a_manifest_broken_after_submission_fails_the_job_without_server_paths(tmp_path: Path, runner: Any) -> None:
    job_runner, _ = runner
    root = tmp_path / "data"
    write_campaign(root)
    (root / "recordings" / "v2.mp4").unlink()
    job = submit(job_runner, root, tmp_path / "campaign-x", source="data_root")
    assert job.state is JobState.FAILED and job.error_type == "ManifestError"
    assert "line 7: recording of viewer 'v2' not found: recordings/v2.mp4" in (job.error or "")
    assert str(tmp_path) not in str(job.to_dict())
    assert not (tmp_path / "campaign-x").exists() and (root / "campaign.yaml").is_file()  # data root untouched

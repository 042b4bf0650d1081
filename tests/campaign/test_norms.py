"""The norms store: two campaigns run one after the other through the CLI, percentiles among the
earlier ads of the same model, a separate base for a changed model, restart, corrupt files,
export/import/remove."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emolens.campaign.norms import NormsStore, NormsStoreError, percentile
from emolens.cli import main

from .fakes import FakeAnalyser, frame, probs


def _campaign(folder: Path, name: str, ads: dict[str, list[float]]) -> tuple[Path, FakeAnalyser]:
    """A campaign whose ad ``x`` has one viewer per happiness level in ``ads[x]``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, lines = {}, []
    for ad, levels in ads.items():
        for i, p in enumerate(levels):
            rec = f"{ad}_{i}.mp4"
            (folder / rec).write_bytes(b"x")
            rows[rec] = [frame(t, probs("happiness", p)) for t in (0.0, 1.0)]
            lines.append(f"  - {{viewer: v{i}, ad: {ad}, recording: {rec}}}")
    ads_yaml = "".join(f"  - {{name: {ad}, duration_s: 2}}\n" for ad in ads)
    (folder / "m.yaml").write_text(f"campaign: {name}\nads:\n{ads_yaml}recordings:\n" + "\n".join(lines) + "\n")
    return folder / "m.yaml", FakeAnalyser(rows)


def _analyse(manifest: Path, fake: FakeAnalyser, db: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    monkeypatch.setattr("emolens.cli.campaign._analyzer", lambda model, detector: fake)
    out = manifest.parent / "out"
    code = main(["campaign", "analyze", str(manifest), "--out", str(out), "--bootstrap", "50", "--no-progress",
                 "--norms", str(db)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"norms: {db}" in text
    return dict(json.loads((out / "summary.json").read_text()))


def test_two_campaigns_one_after_the_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "norms.sqlite"
    first = _analyse(*_campaign(tmp_path / "c1", "spring", {"a": [0.2, 0.3], "b": [0.6, 0.7]}), db, monkeypatch, capsys)
    assert first["norms"]["ads"]["a"]["valence_index"] == {"percentile": None, "base": 0}  # nothing earlier
    second = _analyse(*_campaign(tmp_path / "c2", "summer", {"c": [0.4, 0.5], "d": [0.9, 0.9]}), db, monkeypatch,
                      capsys)
    base = {ad["name"]: ad["kpis"]["valence_index"]["value"] for ad in first["ads"]}
    c = next(ad for ad in second["ads"] if ad["name"] == "c")["kpis"]["valence_index"]["value"]
    assert base["a"] < c < base["b"]  # between spring's two ads: the 50th percentile
    assert second["norms"]["ads"]["c"]["valence_index"] == {"percentile": 50.0, "base": 2}
    assert second["norms"]["ads"]["d"]["valence_index"] == {"percentile": 100.0, "base": 2}
    assert second["norms"]["model_id"] == "fake" and second["model"]["id"] == "fake"
    page = (tmp_path / "c2" / "out" / "report.html").read_text(encoding="utf-8")
    assert "50th percentile" in page and "among 2 earlier ads" in page

    # a restart: a new process reads the same file
    listing = subprocess.run([sys.executable, "-m", "emolens", "norms", "list", "--db", str(db)],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    assert "4 ad(s)" in listing and "spring" in listing and "summer" in listing

    # re-running a campaign replaces its rows and never compares an ad with itself
    again = _analyse(tmp_path / "c2" / "m.yaml", _campaign(tmp_path / "c2", "summer", {"c": [0.4, 0.5],
                     "d": [0.9, 0.9]})[1], db, monkeypatch, capsys)
    assert again["norms"]["ads"]["c"]["valence_index"]["base"] == 2
    with NormsStore.open(db) as store:
        assert len(store.rows()) == 4


def test_a_changed_model_starts_a_separate_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "norms.sqlite"
    _analyse(*_campaign(tmp_path / "c1", "spring", {"a": [0.2, 0.3]}), db, monkeypatch, capsys)
    manifest, fake = _campaign(tmp_path / "c2", "summer", {"c": [0.4, 0.5]})
    fake.model_id = "fake:retrained"  # type: ignore[attr-defined]
    summary = _analyse(manifest, fake, db, monkeypatch, capsys)
    assert summary["norms"]["ads"]["c"]["valence_index"] == {"percentile": None, "base": 0}
    with NormsStore.open(db) as store:
        assert {r["model_id"] for r in store.rows()} == {"fake", "fake:retrained"}
        assert [r["ad"] for r in store.rows("fake:retrained")] == ["c"]


def test_corrupt_or_foreign_files_are_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(NormsStoreError, match=r"junk\.sqlite"):
        NormsStore.open(junk)
    assert main(["norms", "list", "--db", str(junk)]) == 5
    assert "junk.sqlite" in capsys.readouterr().err
    assert junk.read_bytes().startswith(b"this is not")  # left untouched
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(NormsStoreError, match="not an emolens norms store"):
        NormsStore.open(other)


def test_a_corrupt_store_stops_the_campaign_before_any_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    manifest, fake = _campaign(tmp_path / "c1", "spring", {"a": [0.2]})
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"\x00garbage" * 500)
    monkeypatch.setattr("emolens.cli.campaign._analyzer", lambda model, detector: fake)
    assert main(["campaign", "analyze", str(manifest), "--out", str(tmp_path / "out"), "--norms", str(junk)]) == 5
    assert "junk.sqlite" in capsys.readouterr().err and not fake.calls


def test_export_import_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, copy = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    with NormsStore.open(db) as store:
        store.record("spring", [{"name": "a", "viewers": 3, "kpis": {"valence_index": 0.1, "peak_happiness": None}},
                                {"name": "b", "viewers": 0, "kpis": {"valence_index": 0.5}}],
                     model="fer7", model_id="fer7:abc", analysed_at="2026-01-01T00:00:00+00:00")
        store.record("summer", [{"name": "c", "viewers": 4, "kpis": {"valence_index": 0.3, "expressiveness": 0.2}}],
                     model="fer7", model_id="fer7:abc", analysed_at="2026-02-01T00:00:00+00:00")
    for suffix in (".csv", ".json"):
        export = tmp_path / f"norms{suffix}"
        assert main(["norms", "export", str(export), "--db", str(db)]) == 0
        assert main(["norms", "import", str(export), "--db", str(copy)]) == 0
    assert "imported 2 ad(s)" in capsys.readouterr().out
    with NormsStore.open(db) as a, NormsStore.open(copy) as b:
        assert a.rows() == b.rows()  # imported twice: replaced, not doubled
        assert [r["ad"] for r in a.rows()] == ["a", "c"]  # an ad without viewers is not a norm
        assert a.rows()[0]["kpis"] == {"valence_index": 0.1}
    assert main(["norms", "remove", "--campaign", "spring", "--db", str(copy)]) == 0
    assert "removed 1 ad(s)" in capsys.readouterr().out
    with NormsStore.open(copy) as b:
        assert [r["campaign"] for r in b.rows()] == ["summer"]
    bad = tmp_path / "bad.csv"
    bad.write_text("campaign,ad\nx,y\n")
    assert main(["norms", "import", str(bad), "--db", str(copy)]) == 5
    assert "missing column(s)" in capsys.readouterr().err


def test_percentile_is_mid_rank() -> None:
    assert percentile(0.5, [0.1, 0.5, 0.9, 1.0]) == pytest.approx(37.5)
    assert percentile(2.0, [1.0]) == 100.0 and percentile(0.0, [1.0]) == 0.0
    assert percentile(0.5, []) is None and percentile(float("nan"), [1.0]) is None


def test_reading_commands_never_create_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "none.sqlite"
    assert main(["norms", "list", "--db", str(db)]) == 0
    assert main(["norms", "remove", "--campaign", "x", "--db", str(db)]) == 0
    assert main(["norms", "export", str(tmp_path / "out.csv"), "--db", str(db)]) == 2
    assert "no norms store" in capsys.readouterr().err and not db.exists()

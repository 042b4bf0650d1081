import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emolens.cli import app, main
from emolens.errors import DatasetError

from ..data.test_fer2013 import make_rows, write_rows
from ..data.test_ferplus import CASES, write_votes

runner = CliRunner()


@pytest.fixture(autouse=True)
def _tmp_cache(request, tmp_path, monkeypatch):
    if "shared_data" not in request.fixturenames:
        monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def csv(tmp_path):
    return write_rows(tmp_path / "fer2013.csv", make_rows(np.random.default_rng(0), (4, 2, 2)))


def test_stats_json(csv):
    result = runner.invoke(app, ["data", "stats", str(csv), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["dataset"] == "fer2013" and out["total"] == 8
    assert [s["count"] for s in out["splits"]] == [4, 2, 2]
    assert out["splits"][0]["per_class"]["anger"] == 1


def test_stats_table(csv):
    result = runner.invoke(app, ["data", "stats", str(csv)])
    assert result.exit_code == 0, result.output
    for word in ("happiness", "total", "imbalance", "pixel-identical across splits"):
        assert word in result.output


def test_stats_ferplus_with_labels(csv, tmp_path):
    rows = make_rows(np.random.default_rng(0), (4, 2, 2))
    votes = write_votes(tmp_path / "votes.csv", [r[2] for r in rows], [v for v, _ in CASES])
    result = runner.invoke(app, ["data", "stats", str(csv), "--labels", str(votes), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["dataset"] == "ferplus" and "contempt" in out["labels"] and out["total"] == 5
    assert out["skipped"] == {"FER+ unknown/not-a-face majority": 2, "FER+ tie between emotions": 1}


def test_stats_skip_bad(csv):
    with csv.open("a") as f:
        f.write("0,1 2,Training\n")
    result = runner.invoke(app, ["data", "stats", str(csv), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "wrong pixel count: 1" in result.output
    result = runner.invoke(app, ["data", "stats", str(csv)])
    assert isinstance(result.exception, DatasetError)


def test_errors_become_exit_codes(csv, tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing.csv")]) == 5
    assert "FER2013 CSV not found" in capsys.readouterr().err
    assert main(["data", "stats", str(csv), "--dataset", "fer"]) == 5
    assert "did you mean 'fer2013'" in capsys.readouterr().err


@pytest.mark.shared
def test_real_stats_json(shared_data):
    result = runner.invoke(app, ["data", "stats", str(shared_data / "fer2013" / "fer2013.csv.gz"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["cross_duplicates"]["val in train"] == 280 and out["total"] == 35887

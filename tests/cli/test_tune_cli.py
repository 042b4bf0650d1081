"""``emolens tune`` from the command line on a tiny generated FER2013 csv: 2 trials of 1 epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from emolens.cli import main
from emolens.config import load_config

from .test_train_cli import data  # noqa: F401  (the module's generated-data fixture)


def test_tune_cli_prints_table_and_writes_results(data: dict[str, Path], tmp_path: Path,  # noqa: F811
                                                  capsys: pytest.CaptureFixture[str], monkeypatch):
    monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "study"
    args = ["tune", "--out", str(out), "--trials", "2", "--epochs", "1", "--limit", "35", "--pruner", "hyperband",
            "--threads", "1", "--set", f"data.path={data['csv']}", "--set", "model.arch=tiny",
            "--set", "batch_size=16"]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "emolens tune: trials" in printed and "best recipe:" in printed
    cfg = load_config(out / "best.yaml")
    assert cfg.data.path == str(data["csv"]) and cfg.data.limit == 0  # the full recipe, not the proxy
    assert (out / "trials.csv").read_text().count("\n") == 3
    # Resuming with more trials runs only the new one; other settings are refused with a clear error.
    assert main([*args[:4], "3", *args[5:]]) == 0
    assert (out / "trials.csv").read_text().count("\n") == 4
    assert main([*args, "--seed", "9"]) == 2
    assert "other settings" in capsys.readouterr().err

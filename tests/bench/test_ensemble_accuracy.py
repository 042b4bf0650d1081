"""bench/ensemble_accuracy.py: each model's and the averaged-logits ensemble's accuracy on val and test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from emolens.config import load_config
from emolens.data import load_dataset
from emolens.train.distill import Teacher
from emolens.train.trainer import Trainer

from ..train.helpers import tiny_config
from ..train.synthetic import write_fer2013_csv
from .helpers import bench_script


@pytest.fixture(scope="module")
def ens() -> Iterator[ModuleType]:
    with bench_script("ensemble_accuracy") as module:
        yield module


def test_ensemble_row_is_the_mean_of_the_members_logits(ens: ModuleType, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))
    data = write_fer2013_csv(tmp_path / "fer2013.csv", (140, 35, 35))
    cfg_file = tmp_path / "data.yaml"
    cfg_file.write_text(f"data: {{dataset: fer2013, path: {data}}}\n")
    runs = []
    for seed, epochs in ((1, 3), (2, 1)):
        run = tmp_path / f"run{seed}"
        cfg = tiny_config(run, epochs=epochs, seed=seed, **{"data.path": str(data)})
        Trainer(cfg, load_dataset(cfg.data), progress=False).fit()
        runs.append(str(run / "best.pt"))

    assert ens.main([*runs, "--config", str(cfg_file)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("run", "mean"))]
    assert [r[0] for r in rows] == ["run1/best.pt", "run2/best.pt", "mean"]
    assert "val 35 rows, test 35 rows" in out

    # the ensemble row scores what the averaged logits predict
    ds = load_dataset(load_config(cfg_file).data)
    members = [Teacher(r, tuple(ds.labels), 48, 1, torch.device("cpu"), "fp32") for r in runs]
    z = np.mean([ens.logits_of(t, ds.split("test")) for t in members], 0)
    assert float(rows[2][-4]) == pytest.approx((z.argmax(1) == ds.split("test").labels).mean(), abs=1e-4)

    assert ens.main([runs[0], str(tmp_path / "missing.pt"), "--config", str(cfg_file)]) == 2
    assert "not found" in capsys.readouterr().err

"""``compare`` over fake run folders, including broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emolens.config import load_config, save_config
from emolens.errors import InvalidInput
from emolens.evaluation.compare import compare_runs, format_duration, read_run, table_rows

HEADER = "epoch,train_loss,train_acc,val_loss,val_acc,lr,time_s\n"


def make_run(root: Path, name: str, arch: str = "tiny", epochs: int = 5,
             val_accs: tuple[float, ...] = (0.4, 0.6, 0.5), metrics: dict | None = None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    save_config(load_config(overrides={"model.arch": arch, "epochs": epochs}), run / "config.yaml")
    rows = "".join(f"{i + 1},1.0,0.5,1.1,{acc},0.01,12.5\n" for i, acc in enumerate(val_accs))
    (run / "history.csv").write_text(HEADER + rows)
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_read_complete_run(tmp_path: Path) -> None:
    run = make_run(tmp_path, "a", metrics={"accuracy": 0.61, "macro_f1": 0.55, "dataset": "fer2013",
                                           "model": {"params": 1234}})
    s = read_run(run)
    assert (s.arch, s.dataset, s.epochs_done, s.epochs_planned) == ("tiny", "fer2013", 3, 5)
    assert (s.best_val_acc, s.best_epoch) == (0.6, 2)
    assert (s.test_accuracy, s.test_macro_f1, s.params) == (0.61, 0.55, 1234)
    assert s.time_s == pytest.approx(37.5)  # time_s is per epoch: summed


def test_nested_test_block_and_missing_metrics(tmp_path: Path) -> None:
    nested = read_run(make_run(tmp_path, "n", metrics={"test": {"accuracy": 0.7, "macro_f1": 0.6},
                                                       "params": 9}))
    assert (nested.test_accuracy, nested.test_macro_f1, nested.params) == (0.7, 0.6, 9)
    bare = read_run(make_run(tmp_path, "b", arch="vgg"), count_params=False)
    assert bare.test_accuracy is None and bare.params is None and bare.arch == "vgg"
    assert bare.dataset == "fer2013"  # from config.yaml


def test_broken_runs_are_reported_not_fatal(tmp_path: Path) -> None:
    good = make_run(tmp_path, "good", metrics={"accuracy": 0.5})
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    bad_yaml = make_run(tmp_path, "bad_yaml")
    (bad_yaml / "config.yaml").write_text("model: [unclosed\n")
    bad_history = make_run(tmp_path, "bad_history")
    (bad_history / "history.csv").write_text(HEADER + "1,x,0.5,1.1,0.3,0.01,1\n")
    bad_json = make_run(tmp_path, "bad_json")
    (bad_json / "metrics.json").write_text("{nope")
    runs, problems = compare_runs([good, no_config, bad_yaml, bad_history, bad_json, tmp_path / "missing"],
                                  count_params=False)
    assert [Path(r.run).name for r in runs] == ["good"]
    assert "config.yaml is missing" in problems[str(no_config)]
    assert "not valid YAML" in problems[str(bad_yaml)]
    assert "line 2" in problems[str(bad_history)]
    assert "not valid JSON" in problems[str(bad_json)]
    assert "not found" in problems[str(tmp_path / "missing")]


def test_no_readable_run_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no readable run folder"):
        compare_runs([tmp_path / "x", tmp_path / "y"])
    with pytest.raises(InvalidInput, match="no run folders"):
        compare_runs([])


def test_history_without_val_acc_column(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r")
    (run / "history.csv").write_text("epoch,train_loss\n1,0.5\n")
    with pytest.raises(InvalidInput, match="lacks column"):
        read_run(run)


def test_params_counted_from_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.evaluation.helpers import make_checkpoint

    run = make_run(tmp_path, "ck", arch="_evaltest_net")
    make_checkpoint(run / "best.pt", steps=1)
    from emolens.train.archs import count_parameters, create_model

    assert read_run(run).params == count_parameters(create_model("_evaltest_net", num_classes=7))


def test_table_rows_and_durations(tmp_path: Path) -> None:
    runs, _ = compare_runs([make_run(tmp_path, "t", metrics={"accuracy": 0.61234, "params": 56789})],
                           count_params=False)
    columns, rows = table_rows(runs)
    assert columns[0] == "run" and len(rows[0]) == len(columns)
    row = dict(zip(columns, rows[0], strict=True))
    assert row["epochs"] == "3/5" and row["best val acc"] == "0.6000 @2"
    assert row["test acc"] == "0.6123" and row["params"] == "56,789" and row["time"] == "38s"
    assert format_duration(3725) == "1h02m" and format_duration(75) == "1m15s" and format_duration(None) == ""

"""Summaries of training run folders, side by side (``emolens compare``).

A run folder (see :mod:`emolens.train.trainer`) holds ``config.yaml``, ``history.csv`` (``epoch,
train_loss, train_acc, val_loss, val_acc, lr, time_s`` with ``time_s`` the seconds of that epoch),
checkpoints and, once evaluated, ``metrics.json``. Reading needs no torch, except to count
parameters when ``metrics.json`` does not record them.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import EmolensError, InvalidInput

HISTORY_REQUIRED = ("epoch", "val_acc")


@dataclass(frozen=True)
class RunSummary:
    """One run: what was trained, how far, and how well. Unknown values are None."""

    run: str
    arch: str
    dataset: str
    epochs_done: int
    epochs_planned: int | None
    best_val_acc: float | None
    best_epoch: int | None
    test_accuracy: float | None
    test_macro_f1: float | None
    params: int | None
    time_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_config(run: Path) -> dict[str, Any]:
    path = run / "config.yaml"
    if not path.is_file():
        raise InvalidInput(f"{run} is not a run folder: config.yaml is missing")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(cfg, dict):
        raise InvalidInput(f"{path} does not hold a mapping of settings")
    return cfg


def _read_history(run: Path) -> list[dict[str, float]]:
    path = run / "history.csv"
    if not path.is_file():
        return []
    rows: list[dict[str, float]] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in HISTORY_REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path} lacks column(s) {', '.join(missing)}")
        for i, row in enumerate(reader, start=2):
            try:
                rows.append({k: float(v) for k, v in row.items() if k and v not in ("", None)})
            except ValueError as e:
                raise InvalidInput(f"{path} line {i}: not a number ({e})") from e
    return rows


def _read_metrics(run: Path) -> dict[str, Any]:
    path = run / "metrics.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} does not hold a JSON object")
    # Accept both evaluate's flat layout and a {"test": {...}} block.
    test = data.get("test")
    return {**data, **test} if isinstance(test, dict) else data


def _count_params(run: Path) -> int | None:
    """Parameters of the run's model, from its best (else last) checkpoint; None without torch."""
    for name in ("best.pt", "last.pt"):
        path = run / name
        if path.is_file():
            try:
                from ..train.checkpoint import load_checkpoint

                model = load_checkpoint(path).build_model()
            except (ImportError, EmolensError):
                return None
            return sum(p.numel() for p in model.parameters())
    return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_run(run_dir: str | Path, count_params: bool = True) -> RunSummary:
    """Summarise one run folder. Raises InvalidInput (naming the file) when it is missing or malformed.

    ``params`` comes from ``metrics.json`` when it holds one (``params`` or ``model.params``), else
    from the checkpoint when ``count_params`` (this imports torch).
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InvalidInput(f"run folder not found: {run}")
    cfg = _read_config(run)
    history = _read_history(run)
    metrics = _read_metrics(run)
    model_cfg = cfg["model"] if isinstance(cfg.get("model"), dict) else {}
    data_cfg = cfg["data"] if isinstance(cfg.get("data"), dict) else {}
    scored = [r for r in history if "val_acc" in r and not math.isnan(r["val_acc"])]
    best = max(scored, key=lambda r: r["val_acc"]) if scored else None
    times = [r["time_s"] for r in history if "time_s" in r]
    model_block = metrics.get("model")
    params = metrics.get("params", model_block.get("params") if isinstance(model_block, dict) else None)
    if not isinstance(params, int) and count_params:
        params = _count_params(run)
    epochs = cfg.get("epochs")
    return RunSummary(
        run=str(run),
        arch=str(model_cfg.get("arch", "?")),
        dataset=str(metrics.get("dataset") or data_cfg.get("dataset", "?")),
        epochs_done=len(history),
        epochs_planned=epochs if isinstance(epochs, int) else None,
        best_val_acc=best["val_acc"] if best else None,
        best_epoch=int(best["epoch"]) if best else None,
        test_accuracy=_num(metrics.get("accuracy")),
        test_macro_f1=_num(metrics.get("macro_f1")),
        params=params if isinstance(params, int) else None,
        time_s=float(sum(times)) if times else None,
    )


def compare_runs(run_dirs: Iterable[str | Path], count_params: bool = True
                 ) -> tuple[list[RunSummary], dict[str, str]]:
    """Summaries of the readable runs (in the order given) and ``{run: problem}`` for the others.

    Raises InvalidInput only when no run at all is readable (the message lists every problem).
    """
    runs: list[RunSummary] = []
    problems: dict[str, str] = {}
    dirs = [str(d) for d in run_dirs]
    if not dirs:
        raise InvalidInput("no run folders given")
    for d in dirs:
        try:
            runs.append(read_run(d, count_params=count_params))
        except InvalidInput as e:
            problems[d] = str(e)
    if not runs:
        raise InvalidInput("no readable run folder: " + "; ".join(problems.values()))
    return runs, problems


def format_duration(seconds: float | None) -> str:
    """``3725.0`` -> ``"1h02m"``, ``75`` -> ``"1m15s"``, None -> ``""``."""
    if seconds is None:
        return ""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def table_rows(runs: Iterable[RunSummary]) -> tuple[list[str], list[list[str]]]:
    """Column names and formatted rows for a table of runs."""
    columns = ["run", "arch", "dataset", "epochs", "best val acc", "test acc", "test macro-F1", "params", "time"]

    def pct(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    rows = []
    for r in runs:
        epochs = str(r.epochs_done) + (f"/{r.epochs_planned}" if r.epochs_planned is not None else "")
        best = pct(r.best_val_acc) + (f" @{r.best_epoch}" if r.best_epoch is not None else "")
        params = "" if r.params is None else f"{r.params:,}"
        rows.append([Path(r.run).name or r.run, r.arch, r.dataset, epochs, best, pct(r.test_accuracy),
                     pct(r.test_macro_f1), params, format_duration(r.time_s)])
    return columns, rows

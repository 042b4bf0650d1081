"""``emolens tune``: an Optuna search over a recipe's hyper-parameters with short, pruned proxy runs."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated

import typer

from ..config import parse_override


def tune_command(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Base YAML recipe (configs/*.yaml).")] = None,
    out: Annotated[str, typer.Option(help="Study folder: study.db, trials/, trials.csv, tune.png, best.yaml.")] = (
        "runs/tune"
    ),
    trials: Annotated[int, typer.Option(help="Finished trials the study should hold (over all sessions).")] = 20,
    epochs: Annotated[int, typer.Option(help="Proxy epochs per trial.")] = 5,
    limit: Annotated[int, typer.Option(help="Proxy training images (0 = the recipe's data.limit).")] = 0,
    width: Annotated[float, typer.Option(help="Proxy model width (0 = the recipe's).")] = 0.0,
    pruner: Annotated[str, typer.Option(help="median | hyperband | none")] = "median",
    seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
    study: Annotated[str, typer.Option(help="Study name inside study.db.")] = "emolens",
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after this many minutes.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (0 = default).")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Base recipe override, e.g. --set data.path=FILE")
    ] = None,
) -> None:
    """Search learning rate, weight decay, label smoothing, dropout, augmentation, mixup/cutmix and EMA.

    Resumable: run the same command again to continue a killed or finished study (raise --trials for more).
    """
    from ..data import load_dataset
    from ..train.tune import run_study, trial_rows, tune_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = dict(parse_override(item) for item in set_ or [])
    if threads is not None:
        overrides["threads"] = threads
    tc = tune_config(config, overrides, out=out, trials=trials, epochs=epochs, limit=limit, width=width,
                     pruner=pruner, seed=seed, study=study)
    data_cfg = tc.proxy_data()
    ds = load_dataset(data_cfg, seed=int(tc.base["seed"]))
    result = run_study(tc, ds, timeout_s=None if timeout is None else timeout * 60)
    _print_table(trial_rows(result))
    folder = Path(out)
    typer.echo(f"results: {folder / 'trials.csv'}, {folder / 'tune.png'}")
    if (folder / "best.yaml").exists():
        typer.echo(f"best recipe: {folder / 'best.yaml'}  (emolens train --config {folder / 'best.yaml'})")


def _print_table(rows: list[dict[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        typer.echo("no trials yet")
        return
    best = max((r for r in rows if isinstance(r["val_acc"], float) and not math.isnan(r["val_acc"])),
               key=lambda r: float(r["val_acc"]), default=None)  # type: ignore[arg-type]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = Table(title="emolens tune: trials (val_acc: best epoch on the validation split)")
    for c in columns:
        table.add_column(c.removeprefix("augment.").removeprefix("optim.").removeprefix("model."), justify="right")
    for r in rows:
        cells = [_cell(r.get(c)) for c in columns]
        table.add_row(*cells, style="bold green" if r is best else None)
    Console(width=200).print(table)


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)

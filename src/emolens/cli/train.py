"""``emolens train``: a YAML recipe and/or options -> a trained run folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import load_config, parse_override
from ..errors import ConfigError


def _overrides(**given: Any) -> dict[str, Any]:
    """Map CLI options (only those the user gave) onto config keys."""
    keys = {
        "data": "data.path",
        "dataset": "data.dataset",
        "labels": "data.labels_path",
        "label_mode": "data.label_mode",
        "arch": "model.arch",
        "width": "model.width",
        "epochs": "epochs",
        "batch_size": "batch_size",
        "lr": "optim.lr",
        "optimizer": "optim.optimizer",
        "scheduler": "optim.scheduler",
        "seed": "seed",
        "device": "device",
        "out": "out",
        "limit": "data.limit",
        "threads": "threads",
        "channels": "data.channels",
        "teacher": "distill.teacher",
    }
    out = {keys[k]: v for k, v in given.items() if k in keys and v is not None}
    if given.get("skip_bad"):
        out["data.skip_bad"] = True
    return out


def train_command(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML recipe (configs/*.yaml).")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset path: FER2013 csv(.gz) or an image-folder root.")] = None,
    dataset: Annotated[str | None, typer.Option(help="fer2013 | ferplus | folder")] = None,
    labels: Annotated[str | None, typer.Option(help="FER+ votes file (fer2013new.csv) for --dataset ferplus.")] = None,
    label_mode: Annotated[str | None, typer.Option(help="FER+: majority | soft")] = None,
    arch: Annotated[str | None, typer.Option(help="Architecture name (see the registry).")] = None,
    width: Annotated[float | None, typer.Option(help="Channel width multiplier.")] = None,
    channels: Annotated[int | None, typer.Option(help="1 (gray) or 3 (RGB) model input.")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd | adamw")] = None,
    scheduler: Annotated[str | None, typer.Option(help="cosine | plateau | none")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (0 = default).")] = None,
    limit: Annotated[int | None, typer.Option(help="Use at most N training images (stratified).")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder.")] = None,
    teacher: Annotated[str | None, typer.Option(
        help="Distil from this trained model (.pt or .onnx), or from several separated by commas "
             "(an ensemble: logits averaged); see distill.alpha, distill.temperature.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip and count bad samples.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Any config key, e.g. --set optim.weight_decay=1e-4")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    from_snapshot: Annotated[str | None, typer.Option(
        "--from-snapshot", help="With --resume: start --out from this snapshot (emolens snapshot) when it holds"
        " no run yet, e.g. on a changed machine.")] = None,
    time_limit: Annotated[float | None, typer.Option(help="Stop (resumably) after this many minutes.")] = None,
    evaluate: Annotated[bool, typer.Option(help="Evaluate the best model on the test split at the end.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a model; writes config.yaml, last.pt, best.pt, history.csv, curves.png and metrics.json."""
    from ..data import load_dataset
    from ..train.final import evaluate_run
    from ..train.sanity import check_trainable
    from ..train.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = _overrides(
        data=data,
        dataset=dataset,
        labels=labels,
        label_mode=label_mode,
        arch=arch,
        width=width,
        channels=channels,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        scheduler=scheduler,
        seed=seed,
        device=device,
        threads=threads,
        limit=limit,
        out=out,
        teacher=teacher,
        skip_bad=skip_bad,
    )
    for item in set_ or []:
        key, value = parse_override(item)
        overrides[key] = value
    if from_snapshot is not None and not (resume and out is not None):
        raise ConfigError("--from-snapshot needs --resume --out RUN_DIR (the run folder to start from it)")
    if resume and config is None:
        if out is None:
            raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
        if from_snapshot is not None and not (Path(out) / "last.pt").exists():
            from ..train.snapshot import seed_run

            seeded = seed_run(from_snapshot, out)
            typer.echo(f"started {out} from the snapshot {from_snapshot} (epoch {seeded.epoch})", err=True)
        config = Path(out) / "config.yaml"
    cfg = load_config(config, overrides)
    ds = load_dataset(cfg.data, seed=cfg.seed)
    if ds.skipped:
        typer.echo(f"skipped bad samples: {ds.skipped}", err=True)
    for warning in check_trainable(ds):  # DatasetError for one class or too few rows
        typer.echo(f"warning: {warning}", err=True)
    trainer = Trainer(cfg, ds, progress=progress)
    result = trainer.fit(resume=resume, time_limit_s=None if time_limit is None else time_limit * 60)
    typer.echo(
        f"run {result.run_dir}: {result.epochs_done} epochs, best val acc {result.best_val_acc:.4f} "
        f"at epoch {result.best_epoch}" + (" (early stop)" if result.stopped_early else "")
    )
    if not result.finished:
        typer.echo(f"time limit reached: continue with  emolens train --resume --out {result.run_dir}")
        return
    if evaluate:
        metrics = evaluate_run(result.run_dir, ds)
        typer.echo(
            f"test ({metrics['split']}): accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
            f"  -> {result.run_dir / 'metrics.json'}"
        )


def snapshot_command(
    run: Annotated[str, typer.Argument(help="Run folder holding last.pt.")],
    out: Annotated[str, typer.Option(help="Snapshot file to write, e.g. snapshots/NAME.pt.")],
) -> None:
    """Write a compact, resumable snapshot of a run (float16 weights, config, epoch, history: small enough to
    commit); `emolens train --resume --out DIR --from-snapshot FILE` carries on from it on another machine."""
    from ..train.snapshot import write_snapshot

    snap = write_snapshot(run, out)
    size = Path(out).stat().st_size / 1e6
    typer.echo(f"wrote {out} ({size:.1f} MB): epoch {snap.epoch}/{snap.config.epochs}, best val acc "
               f"{snap.best_metric:.4f}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("snapshot")(snapshot_command)

"""``emolens train-keypoints`` and ``emolens export-keypoints``: the facial-keypoint model.

``train-keypoints`` trains a keypoint regressor (defaults: :data:`~emolens.train.keypoints.recipe.KEYPOINT_DEFAULTS`,
then ``--config``, then options) into a run folder like ``emolens train`` does, and scores the best
model on the test split (``metrics.json``, ``predictions.png``). ``export-keypoints`` writes the ONNX
model the engine runs, scored on the run's test split and checked against PyTorch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import parse_override
from ..errors import ConfigError, DatasetError

_OPTION_KEYS = {
    "data": "data.path", "images": "data.labels_path", "dataset": "data.dataset", "test_split": "data.test_split",
    "image_size": "data.image_size", "arch": "model.arch", "width": "model.width", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "optim.lr", "seed": "seed", "device": "device", "threads": "threads",
    "limit": "data.limit", "out": "out",
}  # fmt: skip


def _overrides(given: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    out = {_OPTION_KEYS[k]: v for k, v in given.items() if v is not None}
    for item in sets or []:
        key, value = parse_override(item)
        out[key] = value
    return out


def train_keypoints_command(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML recipe (configs/*.yaml).")] = None,
    data: Annotated[str | None, typer.Option(help="Kaggle CSV or 68-point npz.")] = None,
    images: Annotated[str | None, typer.Option(help="npz with the pixels when the CSV has no Image column.")] = None,
    dataset: Annotated[str | None, typer.Option(help="keypoints15 | keypoints68")] = None,
    test_split: Annotated[str | None, typer.Option(help="test (the file's own) | persons (person-disjoint).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Model input side in pixels.")] = None,
    arch: Annotated[str | None, typer.Option(help="keypoint_resnet | keypoint_tiny (or any registry name).")] = None,
    width: Annotated[float | None, typer.Option(help="Channel width multiplier.")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (0 = default).")] = None,
    limit: Annotated[int | None, typer.Option(help="Use at most N training faces.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Any config key: key=value.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    time_limit: Annotated[float | None, typer.Option(help="Stop (resumably) after this many minutes.")] = None,
    evaluate: Annotated[bool, typer.Option(help="Score the best model on the test split at the end.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a facial-keypoint model; writes config.yaml, last.pt, best.pt, history.csv, curves.png, metrics.json."""
    from ..data.keypoints import load_keypoint_dataset
    from ..evaluation.keypoints import format_table
    from ..train.keypoints.augment import check_keypoint_augment
    from ..train.keypoints.recipe import load_keypoint_config
    from ..train.keypoints.trainer import KeypointTrainer, evaluate_keypoint_run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    given = {"data": data, "images": images, "dataset": dataset, "test_split": test_split, "image_size": image_size,
             "arch": arch, "width": width, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
             "device": device, "threads": threads, "limit": limit, "out": out}
    overrides = _overrides(given, set_)
    if resume and config is None:
        if out is None:
            raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
        config = Path(out) / "config.yaml"
    cfg = load_keypoint_config(config, overrides)
    check_keypoint_augment(cfg.augment)  # before the data is read: fail fast
    ds = load_keypoint_dataset(cfg.data, seed=cfg.seed)
    result = KeypointTrainer(cfg, ds, progress=progress).fit(
        resume=resume, time_limit_s=None if time_limit is None else time_limit * 60)
    typer.echo(f"run {result.run_dir}: {result.epochs_done} epochs, best val NME {result.best_val_nme:.4f} "
               f"at epoch {result.best_epoch}" + (" (early stop)" if result.stopped_early else ""))
    if not result.finished:
        typer.echo(f"time limit reached: continue with  emolens train-keypoints --resume --out {result.run_dir}")
        return
    if evaluate:
        metrics = evaluate_keypoint_run(result.run_dir, ds)
        typer.echo(format_table(metrics))
        typer.echo(f"-> {result.run_dir / 'metrics.json'}, {result.run_dir / 'predictions.png'}")


def export_keypoints_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="best.pt of a keypoint run.")],
    output: Annotated[Path, typer.Option("--out", help="The .onnx file to write.")],
    evaluate: Annotated[bool, typer.Option(help="Score it on the run's test split.")] = True,
    data: Annotated[str | None, typer.Option(help="Dataset path instead of the one in the run's config.")] = None,
    images: Annotated[str | None, typer.Option(help="npz with the pixels, instead of the run config's.")] = None,
    metrics_file: Annotated[list[Path] | None, typer.Option(
        "--metrics", help="NAME=metrics.json of another evaluation to embed, e.g. persons=RUN/metrics.json.",
    )] = None,
) -> None:
    """Export a keypoint checkpoint to ONNX with its point names, input size and normalisation in the metadata."""
    import dataclasses

    from ..data.keypoints import load_keypoint_dataset
    from ..train.keypoints.export import KeypointSet, export_keypoints_onnx
    from ..train.keypoints.trainer import load_keypoint_checkpoint

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    extra = _read_metrics(metrics_file or [])
    sets: tuple[KeypointSet, ...] = ()
    train_points = None
    if evaluate:
        ckpt, _ = load_keypoint_checkpoint(checkpoint)
        dcfg = ckpt.config.data
        dcfg = dataclasses.replace(dcfg, path=data or dcfg.path, labels_path=images or dcfg.labels_path)
        ds = load_keypoint_dataset(dcfg, seed=ckpt.config.seed)
        test = ds.split("test")
        sets = (KeypointSet(test.images, test.points, dcfg.test_split),)  # "test" or "persons"
        train = ds.split("train")
        train_points = (train.points + 0.5) / train.images.shape[1]
    report = export_keypoints_onnx(checkpoint, output, eval_sets=sets, extra_metrics=extra,
                                   train_points=train_points)
    typer.echo(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, {report.exporter} exporter); parity "
               f"max |torch - onnx| = {report.parity_max_abs_diff:.2g} on {report.parity_images} faces")
    for name, m in report.meta.metrics.items():
        if isinstance(m, dict) and "nme" in m:
            typer.echo(f"  {name}: NME {m['nme']:.4f}, mean error {m['mean_px']:.3f} px on {m['n']} faces")


def _read_metrics(items: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, path = str(item).partition("=")
        if not sep or not name:
            raise ConfigError(f"--metrics takes NAME=FILE, got {str(item)!r}")
        try:
            m = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read metrics file {path}: {e}") from e
        keep = ("n", "mean_px", "nme", "nme_outer", "nme_median", "failure_rate", "split", "test_split", "image_size")
        out[name] = {k: m[k] for k in keep if k in m}
    return out


def register(app: typer.Typer) -> None:
    app.command("train-keypoints")(train_keypoints_command)
    app.command("export-keypoints")(export_keypoints_command)

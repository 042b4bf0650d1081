"""``emolens export``: a training checkpoint -> a checked, self-describing ONNX model (+ int8 / fp16)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ..errors import InvalidInput


def _sample(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """At most ``n`` images drawn without replacement (deterministic)."""
    if len(images) <= n:
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))]


def _load_data(checkpoint: Path, data: str, dataset: str, labels: str, split: str, calibration: int,
               exclude_train_duplicates: bool) -> tuple[Any, np.ndarray | None]:
    """The evaluation split (as LabelledImages) and calibration images from the train split."""
    from ..evaluation.runner import load_dataset_for_model, select_split
    from ..train.checkpoint import load_checkpoint
    from ..train.export import LabelledImages

    ckpt = load_checkpoint(checkpoint)
    ds = load_dataset_for_model(ckpt.meta, dataset, data, labels, seed=ckpt.config.seed,
                                base=ckpt.config.data)
    part = select_split(ds, ckpt.meta, split, f" ({data})", exclude_train_duplicates)
    calib = ds.splits.get("train")
    calib_images = _sample(calib.images, calibration) if calib is not None and len(calib) else None
    return LabelledImages(part.images, part.y, part.split, part.dataset), calib_images


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _print_report(report: Any) -> None:
    typer.echo(f"wrote {report.path} ({_mb(report.size_bytes)}, opset {report.opset}, "
               f"{report.exporter} exporter)")
    typer.echo(f"parity vs PyTorch: max |dp| = {report.parity_max_abs_diff:.2e} on {report.parity_images} "
               f"{report.parity_source} images")
    m = report.meta.metrics
    if "accuracy" in m:
        typer.echo(f"embedded metrics ({m.get('split', '?')}, n={m.get('n', '?')}): "
                   f"accuracy {m['accuracy']:.4f}, macro-F1 {m.get('macro_f1', float('nan')):.4f}")
    for v in report.variants.values():
        line = (f"wrote {v.path} ({_mb(v.size_bytes)}, {v.size_bytes / report.size_bytes:.0%} of float32): "
                f"max |dp| vs float32 {v.max_abs_diff:.2e}, top-1 agreement {v.top1_agreement:.2%}")
        if v.accuracy is not None and v.accuracy_delta is not None:
            line += f", accuracy {v.accuracy:.4f} ({v.accuracy_delta:+.4f})"
        typer.echo(line)


def export_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="Training checkpoint (.pt).")],
    out: Annotated[Path, typer.Option(help="Output ONNX file, e.g. model.onnx.")],
    data: Annotated[str | None, typer.Option(help="Dataset for parity, calibration and metrics.")] = None,
    dataset: Annotated[str | None, typer.Option(help="fer2013 | ferplus | folder (with --data).")] = None,
    labels: Annotated[str, typer.Option(help="FER+ votes file (fer2013new.csv) for --dataset ferplus.")] = "",
    split: Annotated[str, typer.Option(help="Split to evaluate and check parity on.")] = "test",
    int8: Annotated[bool, typer.Option("--int8", help="Also write <out>.int8.onnx (static QDQ).")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write <out>.fp16.onnx.")] = False,
    opset: Annotated[int, typer.Option(min=13, help="ONNX opset.")] = 17,
    parity_images: Annotated[int, typer.Option(min=1, help="Images for the PyTorch parity check.")] = 256,
    calibration_images: Annotated[int, typer.Option(min=1, help="Train images for int8 calibration.")] = 512,
    exclude_train_duplicates: Annotated[bool, typer.Option(
        "--exclude-train-duplicates", help="Score without rows identical to a training image.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the export report as JSON.")] = False,
) -> None:
    """Export a checkpoint to ONNX and check it against PyTorch; with --data also embed its metrics on
    --split; --int8 / --fp16 add reduced-precision copies beside it."""
    from ..train.export import export_onnx

    if (data is None) != (dataset is None):
        raise InvalidInput("--data and --dataset go together (give both or neither)")
    if int8 and data is None:
        raise InvalidInput("--int8 needs --data/--dataset: it calibrates on real training images")
    eval_data, calib = (None, None)
    if data is not None and dataset is not None:
        eval_data, calib = _load_data(checkpoint, data, dataset, labels, split, calibration_images,
                                      exclude_train_duplicates)
    modes = [m for m, on in (("int8", int8), ("fp16", fp16)) if on] or ["none"]
    report = export_onnx(checkpoint, out, opset=opset, quantize=modes, eval_data=eval_data,
                         calibration_images=calib, parity_limit=parity_images)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print_report(report)


def calibrate_command(
    model: Annotated[Path, typer.Argument(help="An emolens ONNX emotion model (logits output).")],
    data: Annotated[str, typer.Option(help="Dataset file: fer2013.csv(.gz), or an image folder.")],
    dataset: Annotated[str, typer.Option(help="fer2013 | ferplus | folder.")] = "fer2013",
    labels: Annotated[str, typer.Option(help="FER+ votes file (fer2013new.csv) for --dataset ferplus.")] = "",
    split: Annotated[str, typer.Option(help="Split to fit on: val (PublicTest), never test.")] = "val",
    out: Annotated[Path | None, typer.Option(help="Write here instead of over MODEL.")] = None,
) -> None:
    """Fit a softmax temperature on a validation split and store it in the model's metadata.

    The engine then reports softmax(logits / T): calibrated probabilities, the same top-1 label."""
    from ..evaluation.calibrate import calibrate_onnx
    from ..evaluation.runner import load_dataset_for_model, select_split
    from ..inference.onnx_model import read_model_meta

    meta = read_model_meta(model)
    if split in ("test", "PrivateTest"):
        raise InvalidInput("fit the temperature on a validation split (val), not on the test split you report")
    part = select_split(load_dataset_for_model(meta, dataset, data, labels), meta, split, f" ({data})")
    c = calibrate_onnx(model, part.images, part.y, part.split, out)
    typer.echo(f"wrote {c.path}: temperature {c.temperature:.4f} fitted on {c.split} (n={c.n}); "
               f"ECE there {c.ece_before:.4f} -> {c.ece_after:.4f}")


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``calibrate`` to the app."""
    app.command("export")(export_command)
    app.command("calibrate")(calibrate_command)

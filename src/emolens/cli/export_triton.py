"""``emolens export-triton --out DIR``: a Triton Inference Server model repository of the packaged models.

A thin shell over :func:`emolens.serving.triton_repo.export_repository`; how to serve the folder and
classify through it: docs/triton.md. Needs the ``cluster`` extra (Triton's protobuf definitions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def export_triton_command(
    out: Annotated[Path, typer.Option("--out", help="Repository folder to write (created if missing).")],
    models: Annotated[list[str] | None, typer.Option(
        "--models", help="Models to export, repeated or comma-separated (default: all; see emolens models, "
                         "plus yunet, the face detector).")] = None,
    max_batch_size: Annotated[int | None, typer.Option(
        "--max-batch-size", min=1, help="Triton's max_batch_size for every model (default: 64 for face "
                                        "models, 8 for the detector).")] = None,
) -> None:
    """Write a Triton model repository: NAME/config.pbtxt, NAME/1/model.onnx (dynamic batch), labels."""
    from ..serving.triton_repo import export_repository

    names = [n.strip() for arg in models or [] for n in arg.split(",") if n.strip()]
    for m in export_repository(out, names or None, max_batch_size):
        how = "re-saved with a dynamic batch axis" if m.rewritten else "packaged file unchanged"
        typer.echo(f"wrote {m.folder}: {len(m.config.input)} input(s), {len(m.config.output)} output(s), "
                   f"max_batch_size {m.config.max_batch_size}, 1/model.onnx {how}")
    typer.echo(f"serve it: docker run --rm -p 8000:8000 -v {out.resolve()}:/models "
               "nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models  (docs/triton.md)")


def register(app: typer.Typer) -> None:
    """Add ``export-triton`` to the app."""
    app.command("export-triton")(export_triton_command)

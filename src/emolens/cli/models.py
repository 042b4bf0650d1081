"""CLI commands: ``emolens models`` lists the shipped models; ``emolens models show FILE`` describes
any ONNX file from its metadata.

Only onnxruntime is used to read a file (no torch, no onnx package): the model's self-description
(:class:`~emolens.modelmeta.ModelMeta`) comes from its ``metadata_props``; a file that is not ONNX or
does not describe itself as an emolens model raises :class:`~emolens.errors.ModelFormatError`.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from ..errors import ModelFormatError
from ..modelmeta import ModelMeta
from .output import print_table, write_json


class ListFormat(StrEnum):
    """Formats of ``emolens models``."""

    table = "table"
    json = "json"


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """``{"accuracy", "macro_f1", "split", "n"}`` (+ ``"nme"`` for keypoint models) from a model's metrics,
    flat or nested by split.

    Flat: ``{"accuracy": .., "macro_f1": .., "split": "test"}``. Nested: ``{"test": {"accuracy": ..}}``
    (the first split holding an accuracy wins, ``test``-like names first). Missing values are None.
    """
    def pick(d: dict[str, Any], split: Any) -> dict[str, Any]:
        f1 = d.get("macro_f1", d.get("f1_macro"))
        out = {"accuracy": d.get("accuracy"), "macro_f1": f1, "split": d.get("split", split), "n": d.get("n")}
        if "nme" in d:  # keypoint models: normalised mean error (inter-ocular)
            out["nme"] = d["nme"]
        return out

    if "accuracy" in metrics or "nme" in metrics:
        return pick(metrics, None)
    nested = [(k, v) for k, v in metrics.items() if isinstance(v, dict) and ("accuracy" in v or "nme" in v)]
    nested.sort(key=lambda kv: "test" not in kv[0].lower())
    return pick(nested[0][1], nested[0][0]) if nested else pick({}, None)


def describe_meta(meta: ModelMeta) -> dict[str, Any]:
    """The fields a listing shows for a model: labels, input, architecture, dataset, headline metrics."""
    return {
        "labels": list(meta.labels),
        "input_size": list(meta.input_size),
        "channels": meta.channels,
        "architecture": meta.architecture,
        "dataset": meta.dataset,
        "task": meta.task,
        "metrics": headline_metrics(meta.metrics),
    }


def read_onnx(path: Path) -> tuple[ModelMeta, dict[str, Any]]:
    """The :class:`ModelMeta` of an ONNX file and a description of its graph (inputs, outputs, producer).

    Raises :class:`ModelFormatError` naming the file when it is missing, not ONNX, or not an emolens model.
    """
    import onnxruntime as ort

    if not path.is_file():
        raise ModelFormatError(f"model file not found: {path}")
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for bad protobufs
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFormatError(f"{path} is not a readable ONNX model: {first[:200]}") from e
    mm = session.get_modelmeta()
    meta = ModelMeta.from_props(dict(mm.custom_metadata_map), source=str(path))
    graph = {
        "file": str(path),
        "bytes": path.stat().st_size,
        "producer": mm.producer_name,
        "inputs": [{"name": i.name, "shape": list(i.shape), "type": i.type} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "shape": list(o.shape), "type": o.type} for o in session.get_outputs()],
    }
    return meta, graph


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def _split(m: dict[str, Any]) -> str:
    return _fmt(m["split"]) + (f" (n={m['n']})" if m["n"] else "")


def _list_rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for e in entries:
        m = e["metrics"]
        h, w = e["input_size"]
        rows.append([
            e["name"] + (" *" if e["default"] else ""), e["architecture"], e["dataset"],
            f"{h}x{w}x{e['channels']}",
            ", ".join(e["labels"]) if e["task"] != "keypoints" else f"{len(e['labels'])} points",
            _fmt(m["accuracy"]) if m.get("nme") is None else f"NME {m['nme']:.4f}", _fmt(m["macro_f1"]),
            _split(m),
        ])
    return rows


def list_models(fmt: str) -> None:
    """Print the shipped models (``table`` or ``json``)."""
    from ..inference.shipped import list_shipped

    entries = []
    for sm in list_shipped():
        entry = {"name": sm.name, "default": bool(sm.default), "path": str(sm.path),
                 "description": sm.description}
        entry.update(describe_meta(sm.meta))
        entries.append(entry)
    if fmt == "json":
        write_json(sys.stdout, {"models": entries})
        return
    if not entries:
        typer.echo("no shipped models found", err=True)
        return
    cols = ["name", "architecture", "dataset", "input", "labels", "accuracy", "macro-F1", "split"]
    print_table(sys.stdout, cols, _list_rows(entries), title="Shipped models (* = default)")
    for e in entries:
        if e["description"]:
            typer.echo(f"{e['name']}: {e['description']}")


def show_model(path: Path, fmt: str) -> None:
    """Print what an ONNX file says about itself (``table`` or ``json``)."""
    meta, graph = read_onnx(path)
    if fmt == "json":
        write_json(sys.stdout, {**graph, "meta": meta.to_dict()})
        return
    m = headline_metrics(meta.metrics)
    h, w = meta.input_size
    rows = [
        ("file", graph["file"]), ("size", f"{graph['bytes']:,} bytes"), ("task", meta.task),
        ("architecture", meta.architecture), ("dataset", meta.dataset),
        ("labels", ", ".join(meta.labels)), ("input", f"{h}x{w}, {meta.channels} channel(s)"),
        ("mean / std", f"{list(meta.mean)} / {list(meta.std)}"), ("output", meta.output),
        ("accuracy", _fmt(m["accuracy"])), ("macro-F1", _fmt(m["macro_f1"])), ("split", _split(m)),
        ("graph inputs", "; ".join(f"{i['name']} {i['shape']} {i['type']}" for i in graph["inputs"])),
        ("graph outputs", "; ".join(f"{o['name']} {o['shape']} {o['type']}" for o in graph["outputs"])),
    ]
    print_table(sys.stdout, ["field", "value"], rows, title=path.name)


def register(app: typer.Typer) -> None:
    """Add ``models`` (list) and ``models show FILE`` to the app."""
    models_app = typer.Typer(
        name="models", help="List the shipped models, or describe an ONNX model file.",
        invoke_without_command=True, no_args_is_help=False,
    )

    @models_app.callback()
    def models(
        ctx: typer.Context,
        fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json"),
    ) -> None:
        """List the shipped models with labels, input size, architecture, dataset and test metrics."""
        if ctx.invoked_subcommand is None:
            list_models(fmt.value)

    @models_app.command("show")
    def show(
        file: Path = typer.Argument(..., help="an ONNX model file"),
        fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json"),
    ) -> None:
        """Describe any ONNX model file from its metadata (labels, input, normalisation, metrics, graph)."""
        show_model(file, fmt.value)

    app.add_typer(models_app)

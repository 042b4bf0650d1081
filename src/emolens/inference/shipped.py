"""The models that ship inside the package, under ``src/emolens/assets``.

``assets/models.json`` lists them::

    {"models": [{"name": "fer7-seed", "file": "fer7-seed.onnx", "default": true,
                 "description": "..."}]}

Exactly one entry may be the default (when there is only one model it is the default anyway).
Every problem (no index, bad JSON, a listed file missing, a file that is not an emolens model)
raises :class:`~emolens.errors.ModelFormatError` naming what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelFormatError
from ..modelmeta import ModelMeta
from .onnx_model import read_model_meta

INDEX = "models.json"


@dataclass(frozen=True)
class ShippedModel:
    """One packaged model: its ``name`` (used on the command line), file ``path``, whether it is the
    ``default``, a one-line ``description`` and the metadata read from the file."""

    name: str
    path: Path
    default: bool
    description: str
    meta: ModelMeta


def assets_dir() -> Path:
    """The folder holding the packaged models and their index."""
    return Path(__file__).resolve().parents[1] / "assets"


def _read_index(folder: Path) -> list[dict[str, Any]]:
    index = folder / INDEX
    if not index.is_file():
        raise ModelFormatError(f"no packaged models: {index} is missing")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{index} is not valid JSON: {e}") from e
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ModelFormatError(f"{index} must hold {{\"models\": [...]}} with at least one model")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "file")):
            raise ModelFormatError(f"{index}: models[{i}] needs string fields 'name' and 'file', got {entry!r}")
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise ModelFormatError(f"{index}: model names repeat: {names}")
    return entries


def list_shipped(folder: Path | None = None) -> list[ShippedModel]:
    """Every packaged model, in the order of the index, with its metadata."""
    folder = assets_dir() if folder is None else folder
    out = []
    for e in _read_index(folder):
        path = folder / e["file"]
        if not path.is_file():
            raise ModelFormatError(f"{folder / INDEX} lists {e['name']!r} but its file {path} is missing")
        out.append(ShippedModel(e["name"], path, bool(e.get("default", False)), str(e.get("description", "")),
                                read_model_meta(path)))
    defaults = [m.name for m in out if m.default]
    if len(defaults) > 1:
        raise ModelFormatError(f"{folder / INDEX} marks more than one default model: {defaults}")
    return out


def default_model_path(folder: Path | None = None) -> Path:
    """The file of the default packaged model (the only one when a single model ships)."""
    folder = assets_dir() if folder is None else folder
    entries = _read_index(folder)
    chosen = [e for e in entries if e.get("default")] or (entries if len(entries) == 1 else [])
    if len(chosen) != 1:
        raise ModelFormatError(f"{folder / INDEX} must mark exactly one model as default (\"default\": true)")
    path = folder / chosen[0]["file"]
    if not path.is_file():
        raise ModelFormatError(f"the default model {chosen[0]['name']!r} is missing: {path}")
    return path


def resolve_model(spec: str | Path | None, folder: Path | None = None) -> Path:
    """A model argument -> a file: ``None`` = the default packaged model, a packaged model's name,
    or a path to an ``.onnx`` file."""
    if spec is None:
        return default_model_path(folder)
    path = Path(spec)
    if path.is_file():
        return path
    folder = assets_dir() if folder is None else folder
    if (folder / INDEX).is_file() and isinstance(spec, str):
        for e in _read_index(folder):
            if e["name"] == spec:
                return folder / e["file"]
        known = ", ".join(e["name"] for e in _read_index(folder))
        raise ModelFormatError(f"no model file {spec!r} and no packaged model of that name (packaged: {known})")
    raise ModelFormatError(f"model file not found: {spec}")

"""CLI command ``emolens serve``: run the REST API and web page with uvicorn.

Options override the ``EMOLENS_*`` environment variables (see :class:`emolens.api.settings.Settings`).
The model is loaded once before the server starts, so a bad ``--model`` ends the command with one
clear line and exit code 6 instead of a server that cannot answer. With ``--workers`` above 1 each
worker process builds its own app from the same settings, passed on through the environment.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

APP_FACTORY = "emolens.api.app:create_app"


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the app."""
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes, each with its own model."),
    threads: int | None = typer.Option(None, min=0, max=256, help="ONNX Runtime threads per model (0: auto)."),
    max_concurrency: int | None = typer.Option(
        None, min=0, max=1024, help="Analyses running at once per worker (0: one per CPU core)."
    ),
    model: str | None = typer.Option(None, help="An .onnx model file or a shipped model name."),
    detector: str | None = typer.Option(None, help="Face detector (auto picks the best available)."),
    tta: bool | None = typer.Option(None, "--tta/--no-tta", help="Test-time augmentation by default."),
    api_key: str | None = typer.Option(
        None, help="Require this X-API-Key on /v1/* (prefer the EMOLENS_API_KEY variable: ps shows options)."
    ),
    max_upload_mb: float | None = typer.Option(None, min=0.001, help="Largest upload per file, in MB."),
    max_pixels: int | None = typer.Option(None, min=1, help="Largest decoded image, in pixels."),
    max_batch_files: int | None = typer.Option(None, min=1, max=1000, help="Most files in one batch."),
    keep_uploads: Path | None = typer.Option(
        None, help="Save every uploaded image in this folder (default: nothing uploaded is kept)."
    ),
    data_root: Path | None = typer.Option(
        None,
        exists=True,
        file_okay=False,
        help="The one folder whose campaign manifests and videos clients may name by path "
        "(POST /v1/campaigns/from-path); nothing outside it is read. Default: none, uploads only.",
    ),
    log_level: LogLevel = typer.Option(LogLevel.info, help="uvicorn log level."),
) -> None:
    """Serve the REST API (/v1/analyze, /v1/analyze/batch, /v1/videos, /v1/campaigns, /v1/jobs, /v1/models,
    /healthz, /docs) and the web page."""
    overrides: dict[str, Any] = {
        "threads": threads,
        "max_concurrency": max_concurrency,
        "model": model,
        "detector": detector,
        "tta": tta,
        "api_key": api_key,
        "max_upload_bytes": None if max_upload_mb is None else int(max_upload_mb * 1024 * 1024),
        "max_pixels": max_pixels,
        "max_batch_files": max_batch_files,
        "data_root": None if data_root is None else data_root.expanduser().resolve(),
    }
    if keep_uploads is not None:
        overrides.update(keep_uploads=True, uploads_dir=keep_uploads)
    settings = build_settings(overrides)
    run_server(settings, host=host, port=port, workers=workers, log_level=log_level.value)


def build_settings(overrides: dict[str, Any]) -> Any:
    """``Settings`` from the environment, then the given (non-None) overrides.

    Raises :class:`ConfigError` naming each invalid setting."""
    from pydantic import ValidationError

    from ..api.settings import Settings
    from ..errors import ConfigError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid server settings: {problems}") from None


def run_server(settings: Any, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Load the model once (failing fast), then hand over to uvicorn until it is stopped."""
    import uvicorn

    from ..api import deps
    from ..api.app import create_app

    if workers == 1:
        app = create_app(settings, analyzer_factory=deps.build_analyzer)
        analyzer = app.state.engine.load()
        typer.echo(f"emolens: model {analyzer.model_name}, listening on http://{host}:{port}", err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    analyzer = deps.build_analyzer(settings)  # check the model before starting the workers
    typer.echo(f"emolens: model {analyzer.model_name}, {workers} workers on http://{host}:{port}", err=True)
    del analyzer
    os.environ.update(settings.to_env())
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level)

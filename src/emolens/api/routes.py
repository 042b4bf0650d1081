"""The routes: thin shells that read an upload, call the analyzer once, and shape the answer.

Routes are plain ``def`` functions: FastAPI runs them in its threadpool, so decoding and ONNX
inference never block the event loop. Uploads are read in chunks and refused past the limit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from .. import __version__
from ..errors import EmolensError, InvalidInput, MediaTooLarge, UnsupportedMedia
from ..results import ImageResult
from .bodylimit import human_bytes
from .deps import AnalyzerLike, Engine, get_engine, get_settings, require_api_key
from .schemas import (
    AnalysisOut,
    BatchItemOut,
    BatchOut,
    ErrorDetail,
    ErrorOut,
    HealthOut,
    LimitsOut,
    ModelOut,
    ModelsOut,
    SummaryOut,
)
from .settings import Settings

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


NULLABLE_BOOL: dict[str, Any] = {"anyOf": [{"type": "boolean"}, {"type": "null"}]}
"""The documented schema of a nullable boolean option (read as text, parsed by :func:`nullable_bool`)."""
_TRUE, _FALSE, _NULL = {"true", "1", "yes", "on", "t", "y"}, {"false", "0", "no", "off", "f", "n"}, {"", "null", "none"}


def nullable_bool(value: str | None, name: str) -> bool | None:
    """A nullable boolean option: true/false (1/0, yes/no, on/off) or null/empty (None: the default);
    :class:`InvalidInput` naming the option otherwise. (Read as text: FastAPI's own bool refuses ``null``.)"""
    text = None if value is None else value.strip().lower()
    if text is None or text in _NULL:
        return None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise InvalidInput(f"{name}: must be true, false or null, got {str(value)[:50]!r}")


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


_AUTH: dict[int | str, dict[str, Any]] = {401: _err("Missing or wrong X-API-Key (only when the server has a key).")}
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    413: _err("File, request or image too large (bytes or pixels), or too many files."),
    415: _err("Not an image this server can decode."),
    422: _err("Missing or invalid form field or option."),
}

health_router = APIRouter(tags=["health"])
router = APIRouter(prefix="/v1", tags=["analysis"], dependencies=[Depends(require_api_key)])


def clean_filename(name: str | None, fallback: str = "upload") -> str:
    """The base name of a client-given file name (no folders), at most 200 characters."""
    if not name:
        return fallback
    base = PureWindowsPath(PurePosixPath(name).name).name.strip()
    return base[:200] or fallback


def upload_chunks(upload: UploadFile, limit: int, too_large: str) -> Iterator[bytes]:
    """The bytes of ``upload`` from its start, in chunks; :class:`MediaTooLarge` (message ``too_large``)
    as soon as more than ``limit`` bytes have been read."""
    total = 0
    upload.file.seek(0)
    while chunk := upload.file.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise MediaTooLarge(too_large)
        yield chunk


def read_upload(upload: UploadFile, limit: int, name: str) -> bytes:
    """All bytes of ``upload``, read in chunks; :class:`MediaTooLarge` as soon as it passes ``limit``."""
    data = b"".join(upload_chunks(upload, limit, f"{name}: file is larger than the limit of {human_bytes(limit)}"))
    if not data:
        raise UnsupportedMedia(f"{name}: file is empty (0 bytes)")
    return data


_SUFFIXES = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"GIF8", ".gif"), (b"BM", ".bmp"))


def keep_upload(data: bytes, folder: Path) -> Path:
    """Save an upload under a random name in ``folder`` (the client's file name is never used)."""
    suffix = next((s for magic, s in _SUFFIXES if data.startswith(magic)), ".bin")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        suffix = ".webp"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    return path


def _bool_query(description: str) -> Any:
    return Query(None, json_schema_extra=NULLABLE_BOOL, description=description)


def _bool_form(name: str) -> Any:
    return Form(None, alias=name, json_schema_extra=NULLABLE_BOOL, description="Same as the query option.")


def _option(query: str | None, form: str | None, name: str) -> bool | None:
    """The option's form value, else its query value (each parsed by :func:`nullable_bool`)."""
    given = nullable_bool(form, name)
    return given if given is not None else nullable_bool(query, name)


def _analyze_one(
    engine: Engine, analyzer: AnalyzerLike, upload: UploadFile, name: str, settings: Settings, cropped: bool
) -> ImageResult:
    """Read one upload within the limits, keep it if configured, analyse it in a concurrency slot."""
    data = read_upload(upload, settings.max_upload_bytes, name)
    if settings.keep_uploads:
        keep_upload(data, settings.uploads_dir)
    with engine.slot():
        return analyzer.analyze(data, source=name, cropped=cropped)


@router.post("/analyze", response_model=AnalysisOut, responses=_UPLOAD_ERRORS,
             form_limits={"max_files": 1, "max_fields": 16})
def analyze(
    file: UploadFile = File(description="An image: JPEG, PNG, BMP, WebP, TIFF, GIF (first frame)."),
    cropped: str | None = _bool_query("The image is one face already cropped: skip detection."),
    tta: str | None = _bool_query("Average the prediction with the mirrored face."),
    cropped_form: str | None = _bool_form("cropped"),
    tta_form: str | None = _bool_form("tta"),
    engine: Engine = Depends(get_engine),
    settings: Settings = Depends(get_settings),
) -> AnalysisOut:
    """Find the faces in one image and read the emotion of each."""
    analyzer = engine.get(_option(tta, tta_form, "tta"))
    name = clean_filename(file.filename)
    result = _analyze_one(engine, analyzer, file, name, settings, bool(_option(cropped, cropped_form, "cropped")))
    return AnalysisOut.from_result(result, name)


@router.post("/analyze/batch", response_model=BatchOut, responses=_UPLOAD_ERRORS)
def analyze_batch(
    files: list[UploadFile] = File(description="Several images (repeat the `files` field)."),
    cropped: str | None = _bool_query("Every image is one face already cropped."),
    tta: str | None = _bool_query("Average the prediction with the mirrored face."),
    cropped_form: str | None = _bool_form("cropped"),
    tta_form: str | None = _bool_form("tta"),
    engine: Engine = Depends(get_engine),
    settings: Settings = Depends(get_settings),
) -> BatchOut:
    """Analyse several images; a file that fails gets its own error and the others still succeed."""
    if len(files) > settings.max_batch_files:
        raise MediaTooLarge(f"the batch has {len(files)} files; the limit is {settings.max_batch_files}")
    analyzer = engine.get(_option(tta, tta_form, "tta"))
    crop = bool(_option(cropped, cropped_form, "cropped"))
    items: list[BatchItemOut] = []
    results: list[ImageResult] = []
    for index, upload in enumerate(files):
        name = clean_filename(upload.filename, f"file{index + 1}")
        try:
            result = _analyze_one(engine, analyzer, upload, name, settings, crop)
        except EmolensError as err:
            if err.http_status >= 500:
                raise
            detail = ErrorDetail(type=type(err).__name__, message=str(err))
            items.append(BatchItemOut(filename=name, ok=False, error=detail))
            continue
        results.append(result)
        items.append(BatchItemOut(filename=name, ok=True, result=AnalysisOut.from_result(result, name)))
    return BatchOut(items=items, summary=SummaryOut.from_results(results, tuple(analyzer.labels)))


def _model_out(meta: Any, **fields: Any) -> ModelOut:
    return ModelOut(
        labels=list(meta.labels),
        input_size=list(meta.input_size),
        channels=meta.channels,
        architecture=meta.architecture,
        dataset=meta.dataset,
        metrics=dict(meta.metrics),
        **fields,
    )


def list_shipped_models() -> list[Any]:
    """The models packaged with emolens (a dependency, so tests can replace it).

    A server running its own model still answers when the package ships none (an empty list)."""
    from ..errors import ModelFormatError
    from ..inference.shipped import list_shipped

    try:
        return list(list_shipped())
    except ModelFormatError as e:
        log.warning("no packaged models to list: %s", e)
        return []


@router.get("/models", response_model=ModelsOut, responses=_AUTH)
def models(engine: Engine = Depends(get_engine), shipped: list[Any] = Depends(list_shipped_models)) -> ModelsOut:
    """The shipped models, their labels and metrics, and which one this server has loaded."""
    analyzer = engine.get()
    loaded_name = analyzer.model_name

    def is_loaded(m: Any) -> bool:
        return bool(m.name == loaded_name or Path(str(m.path)).stem == loaded_name)

    shipped_out = [
        _model_out(m.meta, name=m.name, description=m.description, default=m.default, loaded=is_loaded(m))
        for m in shipped
    ]
    match = next((m for m in shipped_out if m.loaded), None)
    loaded = match or _model_out(analyzer.meta, name=loaded_name, loaded=True)
    return ModelsOut(loaded=loaded, shipped=shipped_out)


@health_router.get("/healthz", response_model=HealthOut)
def healthz(engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> HealthOut:
    """Liveness and readiness: the loaded model, the version and the upload limits."""
    limits = LimitsOut(
        max_upload_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        max_batch_files=settings.max_batch_files,
        max_batch_bytes=settings.max_batch_bytes,
    )
    return HealthOut(
        model=engine.get().model_name,
        version=__version__,
        api_key_required=settings.api_key is not None,
        limits=limits,
    )

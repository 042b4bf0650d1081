"""Every error leaves the API as JSON ``{"error": {"type": ..., "message": ...}}``.

Core errors (:class:`~emolens.errors.EmolensError`) keep their ``http_status`` and class name;
FastAPI's validation errors become 422 ``InvalidInput`` with a message naming each bad field;
HTTP errors (404, 405, ...) keep their status; anything unexpected is logged and answered with a
500 ``InternalError`` that reveals nothing of the server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EmolensError

log = logging.getLogger(__name__)

_HTTP_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "MediaTooLarge",
    415: "UnsupportedMedia",
    422: "InvalidInput",
    429: "TooManyRequests",
}


class ApiError(Exception):
    """An error that belongs to the HTTP layer only (for instance a missing API key)."""

    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers


def error_body(type_: str, message: str) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"type": type_, "message": message}}


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response in the API's one error shape."""
    return JSONResponse(error_body(type_, message), status_code=status, headers=headers)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One line naming each invalid field, e.g. ``body.file: Field required; query.tta: ...``."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "")
        msg = err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}" if loc else str(msg))
    return "; ".join(parts) or "invalid request"


async def _emolens_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EmolensError)
    status = int(getattr(exc, "http_status", 400))
    if status >= 500:
        log.error("server-side failure: %s: %s", type(exc).__name__, exc)
    return error_response(status, type(exc).__name__, str(exc) or type(exc).__name__)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.type, exc.message, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "InvalidInput", describe_validation_errors(exc.errors()))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400:
        # FastAPI answers a body it cannot parse (broken multipart, bad boundary) with 400;
        # here a bad form is a 422 like every other invalid request.
        return error_response(422, "InvalidInput", f"the request body cannot be parsed: {exc.detail}")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(status, _HTTP_TYPES.get(status, "HTTPError"), message, headers)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error while serving a request", exc_info=exc)
    return error_response(500, "InternalError", "the server failed to handle this request")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""
    app.add_exception_handler(EmolensError, _emolens_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

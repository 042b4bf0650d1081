"""The API key is checked before a request body is read: a pure ASGI middleware.

FastAPI parses a multipart body before it runs a route's dependencies, so a key checked only by the
:func:`~emolens.api.deps.require_api_key` dependency would let a client without a key make the
server read and spool a whole upload before its 401. :class:`ApiKeyMiddleware` answers the 401 from
the headers alone, for every operation whose OpenAPI entry requires the ``X-API-Key`` header (the
dependency declares it), so new routers are covered as soon as they use the dependency. Requests
that match no keyed operation pass untouched (the application answers them, 404 included).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import check_api_key
from .errors import ApiError, error_body
from .settings import Settings

log = logging.getLogger(__name__)

KEY_HEADER = "X-API-Key"


def keyed_operations(openapi: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """``(path pattern, METHOD)`` of every operation that requires the API key header."""
    schemes = openapi.get("components", {}).get("securitySchemes", {})
    key_schemes = {name for name, sch in schemes.items()
                   if sch.get("type") == "apiKey" and sch.get("in") == "header" and sch.get("name") == KEY_HEADER}
    out = []
    for path, ops in openapi.get("paths", {}).items():
        # one segment per parameter: a path parameter spanning folders (``files/{name:path}``) is not
        # matched here, which only leaves its (body-less GET) check to the dependency
        body = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)).rstrip("/")
        pattern = re.compile("^" + body + "/?$")
        for method, op in ops.items():
            if isinstance(op, dict) and any(set(req) & key_schemes for req in op.get("security", ())):
                out.append((pattern, method.upper()))
    return out


class ApiKeyMiddleware:
    """401 (JSON, ``Connection: close``) for a request to a keyed operation without a valid
    ``X-API-Key``, before the application reads its body."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._keyed: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.settings.accepted_keys() and self._needs_key(scope):
            key = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-api-key"), None)
            try:
                check_api_key(key, self.settings)
            except ApiError as err:
                await _send_401(send, err.message)
                return
        await self.app(scope, receive, send)

    def _needs_key(self, scope: Scope) -> bool:
        if self._keyed is None:
            app = scope.get("app")
            try:
                openapi = app.openapi() if app is not None and hasattr(app, "openapi") else {}
            except Exception:  # no schema: every route still checks the key itself, after its body
                log.exception("no OpenAPI schema: the API key is checked by the routes only")
                openapi = {}
            self._keyed = keyed_operations(openapi)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        method = "GET" if method == "HEAD" else method
        return any(m == method and p.match(path) for p, m in self._keyed)


async def _send_401(send: Send, message: str) -> None:
    body = json.dumps(error_body("Unauthorized", message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})

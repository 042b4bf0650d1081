"""The API key is checked before a request body is read: a pure ASGI middleware.

FastAPI parses a multipart body before it runs a route's dependencies, so a key checked only by the
:func:`~emolens.api.deps.require_api_key` dependency would let a client without a key make the
server read and spool a whole upload before its 401. :class:`ApiKeyMiddleware` answers the 401 from
the headers alone, for every route that depends on the key (found by walking each route's
dependencies, so new routers are covered as soon as they use the dependency).
"""

from __future__ import annotations

import json

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import check_api_key, get_client, require_api_key
from .errors import ApiError, error_body
from .settings import Settings

_KEY_CHECKS = (require_api_key, get_client)


def needs_key(dependant: Dependant) -> bool:
    """Whether ``dependant`` (a route, or one of its dependencies) depends on the API key check."""
    return dependant.call in _KEY_CHECKS or any(needs_key(d) for d in dependant.dependencies)


class ApiKeyMiddleware:
    """401 (JSON, ``Connection: close``) for a request to a keyed route without a valid ``X-API-Key``,
    before the application reads its body. Requests to other routes pass untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._keyed: dict[int, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.settings.accepted_keys() and self._keyed_route(scope):
            key = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-api-key"), None)
            try:
                check_api_key(key, self.settings)
            except ApiError as err:
                await _send_401(send, err.message)
                return
        await self.app(scope, receive, send)

    def _keyed_route(self, scope: Scope) -> bool:
        app = scope.get("app")
        for route in getattr(app, "routes", ()):
            if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
                known = self._keyed.get(id(route))
                if known is None:
                    known = self._keyed[id(route)] = needs_key(route.dependant)
                return known
        return False


async def _send_401(send: Send, message: str) -> None:
    body = json.dumps(error_body("Unauthorized", message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})

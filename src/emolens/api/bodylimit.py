"""A pure ASGI middleware that refuses request bodies over a size limit with a JSON 413.

A declared ``Content-Length`` over the limit is refused before the application reads a byte.
Bodies without one (chunked uploads) are counted as they arrive: the moment the count passes the
limit, reading stops and whatever the application would have answered is replaced by the 413. So a
request never makes the server read more than ``limit`` bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

LimitFor = Callable[[str, str], int | None]
"""``limit_for(method, path)``: the byte limit of a request, or None for no limit."""


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes its limit (caught by the middleware)."""


def human_bytes(n: int) -> str:
    """``n`` bytes for people: ``20 MB``, ``1.5 KB``, ``12 bytes``."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def too_large_message(limit: int, declared: int | None = None) -> str:
    """The message of a 413 for a body over ``limit`` bytes."""
    size = f" ({human_bytes(declared)})" if declared is not None else ""
    return f"request body{size} exceeds the limit of {human_bytes(limit)} for this endpoint"


class BodyLimitMiddleware:
    """Enforce ``limit_for(method, path)`` on every HTTP request body."""

    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("method", "GET"), scope.get("path", "/"))
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, too_large_message(limit, declared))
            return
        await _LimitedCall(self.app, limit)(scope, receive, send)


class _LimitedCall:
    """One request under a limit: counts body bytes, swaps the response for a 413 when exceeded."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.received = 0
        self.exceeded = False
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def limited_receive() -> Message:
            if self.exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if self.exceeded:
                # The application handled the interruption somehow (FastAPI turns it into a 400);
                # the client gets the 413 instead, once.
                if message["type"] == "http.response.start" and not self.started:
                    self.started = True
                    await _send_413(send, too_large_message(self.limit))
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not self.started:
                self.started = True
                await _send_413(send, too_large_message(self.limit))


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, message: str) -> None:
    body = json.dumps(error_body("MediaTooLarge", message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

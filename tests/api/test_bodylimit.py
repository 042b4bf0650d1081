"""The body-limit middleware at the ASGI level, and over a real socket with uvicorn."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from emolens.api.app import create_app
from emolens.api.bodylimit import BodyLimitMiddleware, human_bytes

from .conftest import FakeFactory, image_bytes, make_settings
from .live import live_server


async def echo_length_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, answers 200 with its length."""
    total = 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = str(total).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def call(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """Run one request through ``app``; returns (status, body, number of chunks the app pulled)."""
    pulled = 0
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        i = pulled
        pulled += 1
        if i >= len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/up", "headers": headers}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, pulled


def limited(limit: int | None) -> BodyLimitMiddleware:
    return BodyLimitMiddleware(echo_length_app, lambda method, path: limit)


def test_body_under_the_limit_passes_untouched() -> None:
    status, body, _ = call(limited(100), [b"x" * 40, b"y" * 60], [])
    assert (status, body) == (200, b"100")


def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    status, body, pulled = call(limited(100), [b"x" * 500], [(b"content-length", b"500")])
    assert status == 413 and pulled == 0
    error = json.loads(body)["error"]
    assert error["type"] == "MediaTooLarge" and "100 bytes" in error["message"] and "500 bytes" in error["message"]


def test_undeclared_body_stops_being_read_past_the_limit() -> None:
    chunks = [b"z" * 64] * 1000
    status, body, pulled = call(limited(1000), chunks, [])
    assert status == 413 and json.loads(body)["error"]["type"] == "MediaTooLarge"
    assert pulled == 16  # 16 * 64 = 1024 > 1000: reading stops at the first chunk past the limit


def test_no_limit_means_no_check() -> None:
    status, body, _ = call(limited(None), [b"x" * 5000], [(b"content-length", b"5000")])
    assert (status, body) == (200, b"5000")


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (12, 2048, 20 * 1024 * 1024, 1536)] == [
        "12 bytes",
        "2 KB",
        "20 MB",
        "1.5 KB",
    ]


@pytest.mark.timeout(120)
def test_real_server_answers_an_oversized_upload_with_413_and_keeps_serving() -> None:
    app = create_app(make_settings(max_upload_bytes=50_000), analyzer_factory=FakeFactory())
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        big = b"\xff\xd8\xff" + b"\x00" * 3_000_000
        r = client.post("/v1/analyze", files={"file": ("big.jpg", big, "image/jpeg")})
        assert r.status_code == 413 and r.json()["error"]["type"] == "MediaTooLarge"
        good = client.post("/v1/analyze", files={"file": ("ok.png", image_bytes(), "image/png")})
        assert good.status_code == 200 and good.json()["faces"]

"""create_app: the lifespan, injection, the API key, unexpected failures, the page and its assets."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emolens.api.app import STATIC_DIR, create_app
from emolens.api.deps import Engine, get_engine
from emolens.errors import ModelFormatError
from emolens.results import ImageResult

from .conftest import FakeAnalyzer, FakeFactory, image_bytes, make_settings
from .test_routes import assert_error, upload


def test_analyzer_is_built_once_at_startup(factory: FakeFactory) -> None:
    app = create_app(make_settings(), analyzer_factory=factory)
    with TestClient(app) as client:
        assert len(factory.built) == 1  # by the lifespan, before any request
        for _ in range(3):
            client.post("/v1/analyze", files=upload(image_bytes()))
        assert len(factory.built) == 1
        assert len(factory.built[0].calls) == 3


def test_bad_model_stops_startup_with_the_named_error() -> None:
    def broken(_settings: Any) -> Any:
        raise ModelFormatError("missing.onnx: no such model file")

    with (
        pytest.raises(ModelFormatError, match=r"missing\.onnx"),
        TestClient(create_app(make_settings(), broken)),
    ):
        pass


def test_settings_reach_the_factory() -> None:
    seen: list[Any] = []

    def factory(settings: Any) -> FakeAnalyzer:
        seen.append(settings)
        return FakeAnalyzer(settings)

    with TestClient(create_app(make_settings(model="my.onnx", threads=3, max_pixels=1234), factory)):
        pass
    assert (seen[0].model, seen[0].threads, seen[0].max_pixels) == ("my.onnx", 3, 1234)


def test_engine_can_be_overridden_like_any_dependency(png: bytes) -> None:
    app = create_app(make_settings(), analyzer_factory=FakeFactory())
    app.dependency_overrides[get_engine] = lambda: Engine.of(FakeAnalyzer(name="override"))
    with TestClient(app) as client:
        assert client.post("/v1/analyze", files=upload(png)).json()["model"] == "override"
        assert client.get("/healthz").json()["model"] == "override"


def test_api_key_guards_v1_but_not_health_docs_or_page(client_for: Any, png: bytes) -> None:
    client = client_for(api_key="s3cret")
    assert_error(client.post("/v1/analyze", files=upload(png)), 401, "Unauthorized", "X-API-Key")
    wrong = client.post("/v1/analyze", files=upload(png), headers={"X-API-Key": "guess"})
    assert_error(wrong, 401, "Unauthorized", "not valid")
    assert_error(client.get("/v1/models"), 401, "Unauthorized")
    assert_error(client.post("/v1/analyze/batch", files=[("files", ("a.png", png))]), 401, "Unauthorized")
    ok = client.post("/v1/analyze", files=upload(png), headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": "s3cret"}).status_code == 200
    for path in ("/healthz", "/docs", "/openapi.json", "/", "/static/app.js"):
        assert client.get(path).status_code == 200, path
    assert client.get("/healthz").json()["api_key_required"] is True
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert any(s.get("name") == "X-API-Key" for s in schemes.values())


def test_no_api_key_means_open(client: TestClient, png: bytes) -> None:
    assert client.post("/v1/analyze", files=upload(png)).status_code == 200


class ExplodingAnalyzer(FakeAnalyzer):
    def analyze(self, image: bytes, *, source: str | None = None, cropped: bool = False) -> ImageResult:
        raise RuntimeError("secret internal detail /srv/model.onnx")


def test_unexpected_failure_is_a_500_that_reveals_nothing(png: bytes) -> None:
    app = create_app(make_settings(), analyzer_factory=lambda s: ExplodingAnalyzer(s))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/v1/analyze", files=upload(png))
        message = assert_error(r, 500, "InternalError")
        assert "secret" not in message and "Traceback" not in r.text
        batch = client.post("/v1/analyze/batch", files=[("files", ("a.png", png))])
        assert_error(batch, 500, "InternalError")
        assert client.get("/healthz").status_code == 200  # still serving


class BlockingAnalyzer(FakeAnalyzer):
    """Holds every analysis until ``release`` is set (and says when one has begun)."""

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.started = threading.Event()
        self.release = threading.Event()

    def analyze(self, image: bytes, *, source: str | None = None, cropped: bool = False) -> ImageResult:
        self.started.set()
        if not self.release.wait(timeout=30):
            raise RuntimeError("never released")
        return super().analyze(image, source=source, cropped=cropped)


def test_analysis_runs_off_the_event_loop(png: bytes) -> None:
    """While an analysis is stuck in its thread, the server still answers other requests."""
    analyzer = BlockingAnalyzer()
    app = create_app(make_settings(), analyzer_factory=lambda s: analyzer)
    with TestClient(app) as client:
        results: list[int] = []
        worker = threading.Thread(
            target=lambda: results.append(client.post("/v1/analyze", files=upload(png)).status_code)
        )
        worker.start()
        assert analyzer.started.wait(timeout=30)
        health = client.get("/healthz")  # would hang if the analysis held the event loop
        still_blocked = not analyzer.release.is_set() and worker.is_alive()
        analyzer.release.set()
        worker.join(timeout=30)
    assert health.status_code == 200 and still_blocked
    assert results == [200]


class CountingAnalyzer(FakeAnalyzer):
    """Records the largest number of analyses that ever ran at the same time."""

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.active = 0
        self.peak = 0
        self.gate = threading.Lock()

    def analyze(self, image: bytes, *, source: str | None = None, cropped: bool = False) -> ImageResult:
        with self.gate:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            threading.Event().wait(0.05)  # hold the slot a little so that requests overlap
            return super().analyze(image, source=source, cropped=cropped)
        finally:
            with self.gate:
                self.active -= 1


def test_max_concurrency_caps_analyses_in_flight(png: bytes) -> None:
    analyzer = CountingAnalyzer()
    app = create_app(make_settings(max_concurrency=2), analyzer_factory=lambda s: analyzer)
    with TestClient(app) as client:
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda: statuses.append(client.post("/v1/analyze", files=upload(png)).status_code))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert statuses == [200] * 8
    assert 1 <= analyzer.peak <= 2


def test_engine_slots_default_to_the_cpu_count() -> None:
    from emolens.api.deps import usable_cpus

    engine = Engine.of(FakeAnalyzer(), make_settings(max_concurrency=0))
    assert engine.max_concurrency == usable_cpus() >= 1
    one = Engine.of(FakeAnalyzer(), make_settings(max_concurrency=1))
    with one.slot():
        assert not one._slots.acquire(blocking=False)  # the only slot is taken
    assert one._slots.acquire(blocking=False)


def test_cors_is_off_by_default_and_on_when_configured(client_for: Any) -> None:
    headers = {"Origin": "https://example.org"}
    assert "access-control-allow-origin" not in client_for().get("/healthz", headers=headers).headers
    allowed = client_for(cors_origins=["https://example.org"]).get("/healthz", headers=headers)
    assert allowed.headers["access-control-allow-origin"] == "https://example.org"


def test_page_is_served_with_a_strict_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for ref in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        if ref.startswith("/"):
            assert client.get(ref).status_code == 200, ref


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_page_assets_load_nothing_from_elsewhere(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    assert not re.search(r"https?://", text), f"{name} refers to another host"
    assert "@import" not in text and "//cdn" not in text

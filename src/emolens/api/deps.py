"""What routes receive by dependency injection: settings, the analyzer engine, the API key check.

The :class:`Engine` owns the analyzer(s): the default one is built once at startup (in the app's
lifespan) and a test-time-augmentation twin only when a request first asks for ``tta``. Tests swap
the engine with ``app.dependency_overrides[get_engine]`` or pass ``analyzer_factory`` to
``create_app``; routes never know which analyzer they got.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from ..jobs.models import PUBLIC_CLIENT
from ..modelmeta import ModelMeta
from ..results import ImageResult
from .errors import ApiError
from .settings import Settings

log = logging.getLogger(__name__)


class AnalyzerLike(Protocol):
    """The part of :class:`emolens.inference.analyzer.Analyzer` the API uses."""

    @property
    def meta(self) -> ModelMeta: ...

    @property
    def labels(self) -> Sequence[str]: ...

    @property
    def model_name(self) -> str: ...

    def analyze(self, image: bytes, *, source: str | None = None, cropped: bool = False) -> ImageResult: ...


AnalyzerFactory = Callable[[Settings], AnalyzerLike]
"""Builds an analyzer from settings (``settings.tta`` says whether it averages flipped views)."""


def build_analyzer(settings: Settings) -> AnalyzerLike:
    """The real analyzer for ``settings`` (ONNX Runtime; imported here so importing the API is cheap)."""
    from ..inference.analyzer import Analyzer

    return Analyzer(
        model=settings.model,
        detector=settings.detector,
        align=settings.align,
        tta=settings.tta,
        threads=settings.threads,
        max_pixels=settings.max_pixels,
        max_bytes=settings.max_upload_bytes,
    )


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class Engine:
    """Holds the analyzers of one app: built once, shared by every request (thread-safe)."""

    def __init__(self, settings: Settings, factory: AnalyzerFactory = build_analyzer) -> None:
        self.settings = settings
        self._factory = factory
        self._analyzers: dict[bool, AnalyzerLike] = {}
        self._lock = threading.Lock()
        self.max_concurrency = settings.max_concurrency or usable_cpus()
        self._slots = threading.BoundedSemaphore(self.max_concurrency)

    @classmethod
    def of(cls, analyzer: AnalyzerLike, settings: Settings | None = None) -> Engine:
        """An engine around a ready analyzer (used for both tta values); handy in tests."""
        return cls(settings or Settings(), lambda _settings: analyzer)

    def load(self) -> AnalyzerLike:
        """Build the default analyzer now (the lifespan calls this so a bad model fails at startup)."""
        return self.get(None)

    def get(self, tta: bool | None = None) -> AnalyzerLike:
        """The analyzer for ``tta`` (None: the configured default), built on first use."""
        want = self.settings.tta if tta is None else bool(tta)
        ready = self._analyzers.get(want)
        if ready is not None:  # the common case: no lock needed to read a built analyzer
            return ready
        with self._lock:
            analyzer = self._analyzers.get(want)
            if analyzer is None:
                settings = (
                    self.settings if want == self.settings.tta else self.settings.model_copy(update={"tta": want})
                )
                log.info("loading analyzer (model=%s, tta=%s)", settings.model or "default", want)
                analyzer = self._factory(settings)
                self._analyzers[want] = analyzer
            return analyzer

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of ``max_concurrency`` analysis slots: more parallel CPU work than cores only
        slows every request down, so requests beyond that wait here (in their threadpool thread)."""
        with self._slots:
            yield

    def close(self) -> None:
        """Drop the analyzers (their sessions are freed with them)."""
        with self._lock:
            self._analyzers.clear()


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The app's analyzer engine (override in tests)."""
    engine: Engine = request.app.state.engine
    return engine


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Needed when the server has a key.")



def client_id(key: str) -> str:
    """The client an API key stands for: a short digest (the key itself is never stored)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def check_api_key(key: str | None, settings: Settings) -> str:
    """The client of a request carrying ``key`` (``X-API-Key``): :data:`PUBLIC_CLIENT` on a server
    without keys, else the key's :func:`client_id`; :class:`ApiError` 401 for a missing or unknown key."""
    expected = settings.accepted_keys()
    if not expected:
        return PUBLIC_CLIENT
    if key is None:
        raise ApiError(401, "Unauthorized", "this server needs an API key: send it in the X-API-Key header")
    given = key.encode()
    # compare with every key (no early exit): the time taken says nothing about which one matched
    matched = [secrets.compare_digest(given, k.encode()) for k in expected]
    if not any(matched):
        raise ApiError(401, "Unauthorized", "the API key in the X-API-Key header is not valid")
    return client_id(key)


def require_api_key(key: str | None = Security(_api_key_header), settings: Settings = Depends(get_settings)) -> None:
    """Refuse the request with 401 unless the server has no key or ``X-API-Key`` is one of its keys.

    (:class:`~emolens.api.auth.ApiKeyMiddleware` checks the same before any body is read.)"""
    check_api_key(key, settings)


def get_client(key: str | None = Security(_api_key_header), settings: Settings = Depends(get_settings)) -> str:
    """The client making the request (see :func:`check_api_key`); jobs belong to the client that made them."""
    return check_api_key(key, settings)

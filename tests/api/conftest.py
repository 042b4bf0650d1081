"""Fixtures of the API tests: a fake analyzer with the real one's contract, apps and clients.

The fake decodes with Pillow (so its width/height are real), refuses what the real analyzer
refuses (empty or non-image bytes -> UnsupportedMedia, too many pixels -> MediaTooLarge) and finds
one face per image with fixed probabilities. Routes cannot tell it from the real thing.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, UnidentifiedImageError

from emolens.api.app import create_app
from emolens.api.routes import list_shipped_models
from emolens.api.settings import Settings
from emolens.errors import MediaTooLarge, UnsupportedMedia
from emolens.labels import FER7
from emolens.modelmeta import ModelMeta
from emolens.results import FaceResult, ImageResult

PROBS = dict(zip(FER7, (0.05, 0.02, 0.03, 0.7, 0.05, 0.05, 0.1), strict=True))
PHOTOS = ("fer_justin.jpg", "dlib_2008_001009.jpg", "face_recognition_two_people.jpg")


class FakeAnalyzer:
    """Stands in for :class:`emolens.inference.analyzer.Analyzer` (same public surface)."""

    def __init__(self, settings: Settings | None = None, name: str = "fake-fer7") -> None:
        self.settings = settings or Settings()
        self.max_pixels = self.settings.max_pixels
        self.tta = self.settings.tta
        self.model_name = name
        self.labels = FER7
        self.meta = ModelMeta(
            labels=FER7,
            input_size=(48, 48),
            channels=1,
            mean=(0.5,),
            std=(0.25,),
            architecture="fake",
            dataset="none",
            metrics={"accuracy": 0.5},
        )
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def analyze(self, image: bytes, *, source: str | None = None, cropped: bool = False) -> ImageResult:
        name = source or "<bytes>"
        if not image:
            raise UnsupportedMedia(f"{name}: file is empty")
        try:
            with Image.open(io.BytesIO(image)) as img:
                width, height = img.size
                if width * height > self.max_pixels:
                    raise MediaTooLarge(f"{name}: {width}x{height} pixels exceeds the limit of {self.max_pixels}")
                img.load()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise UnsupportedMedia(f"{name}: not a decodable image") from e
        with self._lock:
            self.calls.append({"source": source, "cropped": cropped, "tta": self.tta, "bytes": len(image)})
        box = (0, 0, width, height) if cropped else (width // 4, height // 4, width // 2, height // 2)
        face = FaceResult(box=box, detection_score=0.99, emotion="happiness", probabilities=PROBS)
        return ImageResult(
            source=name,
            width=width,
            height=height,
            faces=(face,),
            timings_ms={"classify": 1.0},
            model=self.model_name,
        )


@dataclass(frozen=True)
class FakeShipped:
    """Same fields as :class:`emolens.inference.shipped.ShippedModel`."""

    name: str
    path: Path
    default: bool
    description: str
    meta: ModelMeta


def fake_shipped() -> list[FakeShipped]:
    meta = FakeAnalyzer().meta
    return [
        FakeShipped("fake-fer7", Path("fake-fer7.onnx"), True, "the fake default", meta),
        FakeShipped("other", Path("other.onnx"), False, "another model", meta.replace(architecture="other")),
    ]


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    """A small random image encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def make_settings(**kw: Any) -> Settings:
    """Settings for tests, independent of any EMOLENS_* variable in the environment."""
    base: dict[str, Any] = {
        "model": None,
        "api_key": None,
        "keep_uploads": False,
        "cors_origins": [],
        "jobs_dir": Path(tempfile.mkdtemp(prefix="emolens-jobs-test-")),  # never the user's cache
    }
    base.update(kw)
    return Settings(**base)


class FakeFactory:
    """An analyzer factory that remembers the analyzers it built (one per tta value)."""

    def __init__(self) -> None:
        self.built: list[FakeAnalyzer] = []

    def __call__(self, settings: Settings) -> FakeAnalyzer:
        analyzer = FakeAnalyzer(settings)
        self.built.append(analyzer)
        return analyzer


@pytest.fixture()
def factory() -> FakeFactory:
    return FakeFactory()


@pytest.fixture()
def client_for(factory: FakeFactory) -> Iterator[Any]:
    """``client_for(**settings)``: a TestClient (lifespan run) of an app on the fake analyzer."""
    clients: list[TestClient] = []

    def make(**kw: Any) -> TestClient:
        app = create_app(make_settings(**kw), analyzer_factory=factory)
        app.dependency_overrides[list_shipped_models] = fake_shipped
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture()
def client(client_for: Any) -> TestClient:
    return client_for()


@pytest.fixture()
def png() -> bytes:
    return image_bytes("PNG")


@pytest.fixture()
def photo(shared_data: Path) -> Path:
    """A real photo with faces from ../shared/data/media/photos (or skip)."""
    for name in PHOTOS:
        path = shared_data / "media" / "photos" / name
        if path.is_file():
            return path
    pytest.skip("no photo found in shared/data/media/photos")

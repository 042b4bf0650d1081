"""The API on the real Analyzer (ONNX Runtime + a real face detector).

A tiny generated ONNX model (tests/inference/modelfactory.py) stands in for a trained one, so these
tests run without any shipped model; the shipped default model is tested too when the package has
one. The bad-input corpus of tests/inference/badinputs.py goes through every upload route.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emolens.api.app import create_app
from emolens.labels import FER7

from .conftest import make_settings
from .test_routes import assert_error, upload

pytest.importorskip("emolens.inference.analyzer", reason="the real Analyzer is not written yet")
modelfactory = pytest.importorskip("tests.inference.modelfactory", reason="needs onnx (dev dependency)")
badinputs = pytest.importorskip("tests.inference.badinputs", reason="bad-input corpus not available")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = modelfactory.make_model(tmp_path_factory.mktemp("models") / "tiny-fer7.onnx")
    return path


@pytest.fixture(scope="module")
def real_client(tiny_model: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(model=str(tiny_model), detector="haar"))
    with TestClient(app) as client:
        yield client


def shipped_default() -> Any:
    try:
        from emolens.inference.shipped import default_model_path, list_shipped

        default_model_path()
        return next(m for m in list_shipped() if m.default or len(list_shipped()) == 1)
    except Exception as e:  # no index or no model in this checkout
        pytest.skip(f"no shipped model: {e}")


def test_real_photo_gives_faces_with_every_label(real_client: TestClient, photo: Path) -> None:
    r = real_client.post("/v1/analyze", files=upload(photo.read_bytes(), photo.name, "image/jpeg"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny-fer7" and body["source"] == photo.name
    assert body["faces"], "the detector found no face in a photo with faces"
    for face in body["faces"]:
        assert list(face["probabilities"]) == list(FER7)
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        x, y, w, h = face["box"]
        assert min(x, y) >= 0 and x + w <= body["width"] and y + h <= body["height"]
    assert {"decode", "detect", "classify"} <= set(body["timings_ms"])


def test_cropped_and_tta(real_client: TestClient) -> None:
    crop = badinputs.jpeg(48, 48)
    body = real_client.post("/v1/analyze?cropped=true&tta=true", files=upload(crop, "crop.jpg")).json()
    (face,) = body["faces"]
    assert face["box"] == [0, 0, 48, 48]


def test_every_bad_input_gets_its_status_and_the_server_lives_on(real_client: TestClient) -> None:
    for case in badinputs.corpus():
        r = real_client.post("/v1/analyze", files=upload(case.data, case.name, "application/octet-stream"))
        if case.error is None:
            assert r.status_code == 200, (case.name, r.text)
            assert (r.json()["width"], r.json()["height"]) == case.size, case.name
        else:
            assert_error(r, case.error.http_status, case.error.__name__, case.name)
    assert real_client.get("/healthz").status_code == 200


def test_batch_of_the_bad_input_corpus(real_client: TestClient) -> None:
    cases = badinputs.corpus()[:12]
    files = [("files", (c.name, c.data, "application/octet-stream")) for c in cases]
    r = real_client.post("/v1/analyze/batch", files=files)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["filename"] for i in items] == [c.name for c in cases]
    for case, item in zip(cases, items, strict=True):
        assert item["ok"] is (case.error is None), case.name
        if case.error is not None:
            assert item["error"]["type"] == case.error.__name__
    assert r.json()["summary"]["images"] == sum(c.error is None for c in cases)


def test_models_names_the_loaded_model(real_client: TestClient) -> None:
    body = real_client.get("/v1/models").json()
    assert body["loaded"]["name"] == "tiny-fer7"
    assert body["loaded"]["labels"] == list(FER7) and body["loaded"]["architecture"] == "test_gemm"
    assert not any(m["loaded"] for m in body["shipped"])  # a file of ours, not a shipped model


def test_shipped_default_model_serves(photo: Path) -> None:
    default = shipped_default()
    with TestClient(create_app(make_settings())) as client:
        health = client.get("/healthz").json()
        models = client.get("/v1/models").json()
        r = client.post("/v1/analyze", files=upload(photo.read_bytes(), photo.name, "image/jpeg"))
    assert models["loaded"]["name"] == default.name and models["loaded"]["loaded"] is True
    assert health["model"] in (default.name, default.path.stem)
    assert r.status_code == 200 and r.json()["faces"]
    assert list(r.json()["faces"][0]["probabilities"]) == list(default.meta.labels)

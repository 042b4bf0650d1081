"""Every route on the fake analyzer: answers, options, error shapes, and serving on after bad input."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from emolens import __version__

from .conftest import FakeFactory, image_bytes


def upload(data: bytes, name: str = "face.png", ctype: str = "image/png") -> dict[str, Any]:
    return {"file": (name, data, ctype)}


def assert_error(response: Any, status: int, type_: str, *words: str) -> str:
    """The response is the API's JSON error with this status and type; returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == type_
    message = body["error"]["message"]
    for word in words:
        assert word in message, message
    return str(message)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "TIFF"])
def test_analyze_returns_every_face(client: TestClient, fmt: str) -> None:
    r = client.post("/v1/analyze", files=upload(image_bytes(fmt, (80, 60)), f"img.{fmt.lower()}"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["source"], body["width"], body["height"], body["model"]) == (
        f"img.{fmt.lower()}",
        80,
        60,
        "fake-fer7",
    )
    (face,) = body["faces"]
    x, y, w, h = face["box"]
    assert 0 <= x < x + w <= 80 and 0 <= y < y + h <= 60
    assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["confidence"] == face["probabilities"][face["emotion"]]
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert body["timings_ms"] == {"classify": 1.0}


def test_client_file_name_loses_its_folders(client: TestClient, png: bytes) -> None:
    r = client.post("/v1/analyze", files=upload(png, "../../etc/secret.png"))
    assert r.json()["source"] == "secret.png"
    r = client.post("/v1/analyze", files=upload(png, "C:\\Users\\me\\holiday.png"))
    assert r.json()["source"] == "holiday.png"


@pytest.mark.parametrize("where", ["query", "form"])
def test_cropped_and_tta_options_reach_the_analyzer(
    client: TestClient, factory: FakeFactory, png: bytes, where: str
) -> None:
    opts = {"cropped": "true", "tta": "true"}
    kw: dict[str, Any] = {"params": opts} if where == "query" else {"data": opts}
    r = client.post("/v1/analyze", files=upload(png), **kw)
    assert r.status_code == 200, r.text
    assert r.json()["faces"][0]["box"] == [0, 0, 64, 48]  # the fake's "cropped" answer
    tta_analyzer = next(a for a in factory.built if a.tta)
    assert tta_analyzer.calls[-1]["cropped"] is True
    # without options: the default analyzer (no tta), detection on
    client.post("/v1/analyze", files=upload(png))
    default = next(a for a in factory.built if not a.tta)
    assert default.calls[-1]["cropped"] is False
    assert len(factory.built) == 2  # the tta twin is built once, not per request
    client.post("/v1/analyze?tta=true", files=upload(png))
    assert len(factory.built) == 2


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"this is plain text, not a picture", "notes.txt", ("notes.txt", "not")),
        (b"", "empty.png", ("empty.png", "empty")),
        (image_bytes("PNG")[:60], "truncated.png", ("truncated.png",)),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "header-only.png", ("header-only.png",)),
    ],
)
def test_not_an_image_is_415(client: TestClient, data: bytes, name: str, words: tuple[str, ...]) -> None:
    assert_error(client.post("/v1/analyze", files=upload(data, name)), 415, "UnsupportedMedia", *words)


def test_bad_forms_are_422_naming_the_problem(client: TestClient, png: bytes) -> None:
    assert_error(client.post("/v1/analyze"), 422, "InvalidInput", "file")
    assert_error(client.post("/v1/analyze", data={"file": "just text"}), 422, "InvalidInput", "file")
    assert_error(client.post("/v1/analyze", files={"image": ("a.png", png)}), 422, "InvalidInput", "file")
    assert_error(client.post("/v1/analyze?tta=maybe", files=upload(png)), 422, "InvalidInput", "tta")
    broken = client.post(
        "/v1/analyze",
        content=b"--nope\r\ngarbage",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert_error(broken, 422, "InvalidInput", "body")
    no_boundary = client.post("/v1/analyze", content=b"abc", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 422
    as_json = client.post("/v1/analyze", json={"file": "abc"})
    assert_error(as_json, 422, "InvalidInput", "file")


def test_file_over_the_byte_limit_is_413(client_for: Any) -> None:
    client = client_for(max_upload_bytes=1000)
    big = image_bytes("PNG", (64, 64))  # about 12 KB of noise
    assert len(big) > 1000
    assert_error(client.post("/v1/analyze", files=upload(big, "big.png")), 413, "MediaTooLarge", "big.png", "1000")
    huge = b"\xff\xd8\xff" + b"\x00" * 200_000  # past the request limit too: refused before parsing
    assert_error(client.post("/v1/analyze", files=upload(huge, "huge.jpg")), 413, "MediaTooLarge", "limit")
    assert client.post("/v1/analyze", files=upload(image_bytes("PNG", (8, 8)))).status_code == 200


def test_chunked_body_over_the_limit_is_413(client_for: Any) -> None:
    """No Content-Length (chunked transfer): the count while reading catches it (see test_bodylimit)."""
    client = client_for(max_upload_bytes=1000)

    def chunks() -> Any:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        for _ in range(100):
            yield b"\x00" * 8192

    r = client.post("/v1/analyze", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "MediaTooLarge", "limit")


def test_too_many_pixels_is_413(client_for: Any) -> None:
    client = client_for(max_pixels=1000)
    r = client.post("/v1/analyze", files=upload(image_bytes("PNG", (64, 48)), "wide.png"))
    assert_error(r, 413, "MediaTooLarge", "wide.png", "1000")


def test_batch_reports_each_file_and_survives_bad_ones(client: TestClient) -> None:
    files = [
        ("files", ("a.png", image_bytes("PNG", (40, 30)), "image/png")),
        ("files", ("b.txt", b"not an image", "text/plain")),
        ("files", ("c.jpg", image_bytes("JPEG", (50, 50)), "image/jpeg")),
        ("files", ("d.png", b"", "image/png")),
    ]
    r = client.post("/v1/analyze/batch", files=files)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["filename"] for i in items] == ["a.png", "b.txt", "c.jpg", "d.png"]
    assert [i["ok"] for i in items] == [True, False, True, False]
    assert items[0]["result"]["width"] == 40 and items[2]["result"]["width"] == 50
    assert items[1]["error"]["type"] == "UnsupportedMedia" and "b.txt" in items[1]["error"]["message"]
    assert items[3]["error"]["type"] == "UnsupportedMedia" and items[3]["result"] is None
    summary = r.json()["summary"]
    assert (summary["images"], summary["faces"], summary["top"]) == (2, 2, "happiness")
    assert summary["counts"]["happiness"] == 2 and sum(summary["counts"].values()) == 2
    assert set(summary["mean_probabilities"]) == set(items[0]["result"]["faces"][0]["probabilities"])


def test_batch_per_file_limits_and_file_count(client_for: Any) -> None:
    client = client_for(max_upload_bytes=2000, max_batch_files=3)
    big = image_bytes("PNG", (64, 64))
    small = image_bytes("PNG", (8, 8))
    files = [("files", ("big.png", big, "image/png")), ("files", ("small.png", small, "image/png"))]
    items = client.post("/v1/analyze/batch", files=files).json()["items"]
    assert [i["ok"] for i in items] == [False, True]
    assert items[0]["error"]["type"] == "MediaTooLarge"
    four = [("files", (f"{i}.png", small, "image/png")) for i in range(4)]
    assert_error(client.post("/v1/analyze/batch", files=four), 413, "MediaTooLarge", "4 files", "3")
    assert_error(client.post("/v1/analyze/batch"), 422, "InvalidInput", "files")


def test_batch_request_over_the_total_limit_is_413(client_for: Any) -> None:
    client = client_for(max_batch_bytes=10_000)
    files = [("files", (f"{i}.png", image_bytes("PNG", (64, 64), seed=i), "image/png")) for i in range(10)]
    assert_error(client.post("/v1/analyze/batch", files=files), 413, "MediaTooLarge", "request body")


def test_models_lists_shipped_and_marks_the_loaded_one(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["loaded"]["name"] == "fake-fer7" and body["loaded"]["loaded"] is True
    assert [(m["name"], m["loaded"], m["default"]) for m in body["shipped"]] == [
        ("fake-fer7", True, True),
        ("other", False, False),
    ]
    first = body["shipped"][0]
    assert first["labels"][:2] == ["anger", "disgust"] and first["input_size"] == [48, 48]
    assert first["metrics"] == {"accuracy": 0.5}


def test_models_describes_a_loaded_model_that_is_not_shipped(client: TestClient) -> None:
    from emolens.api.routes import list_shipped_models

    client.app.dependency_overrides[list_shipped_models] = lambda: []  # type: ignore[attr-defined]
    body = client.get("/v1/models").json()
    assert body["shipped"] == []
    assert body["loaded"]["name"] == "fake-fer7" and body["loaded"]["architecture"] == "fake"


def test_healthz(client_for: Any) -> None:
    body = client_for(max_batch_files=5).get("/healthz").json()
    assert body["status"] == "ok" and body["model"] == "fake-fer7" and body["version"] == __version__
    assert body["limits"]["max_batch_files"] == 5 and body["api_key_required"] is False


def test_docs_and_openapi(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()  # works offline
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        got = client.get(f"/docs-static/{asset}")
        assert got.status_code == 200 and len(got.content) > 10_000
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/analyze", "/v1/analyze/batch", "/v1/models", "/healthz"} <= set(paths)
    responses = paths["/v1/analyze"]["post"]["responses"]
    assert {"200", "413", "415", "422"} <= set(responses)


def test_unknown_route_and_wrong_method_keep_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404, "NotFound")
    assert_error(client.get("/v1/analyze"), 405, "MethodNotAllowed")


def test_server_keeps_serving_after_bad_input(client: TestClient, png: bytes) -> None:
    bad_requests = [
        lambda: client.post("/v1/analyze", files=upload(b"\x00" * 50, "zeros.png")),
        lambda: client.post("/v1/analyze", files=upload(b"GIF89a" + b"\xff" * 30, "bad.gif")),
        lambda: client.post("/v1/analyze", content=b"\x00\x01", headers={"content-type": "multipart/form-data"}),
        lambda: client.post("/v1/analyze/batch", files=[("files", ("x", b"junk"))]),
        lambda: client.post("/v1/analyze?cropped=perhaps", files=upload(png)),
    ]
    for send in bad_requests * 3:
        assert send().status_code < 500
    assert client.post("/v1/analyze", files=upload(png)).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_uploads_are_not_kept_by_default(client: TestClient, png: bytes, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    client.post("/v1/analyze", files=upload(png))
    assert list(tmp_path.rglob("*")) == []


def test_keep_uploads_saves_under_a_random_name(client_for: Any, png: bytes, tmp_path: Any) -> None:
    folder = tmp_path / "kept"
    client = client_for(keep_uploads=True, uploads_dir=folder)
    client.post("/v1/analyze", files=upload(png, "../evil name.png"))
    (saved,) = folder.iterdir()
    assert saved.read_bytes() == png and saved.suffix == ".png" and "evil" not in saved.name
    assert io.BytesIO(saved.read_bytes()).read(4) == b"\x89PNG"

"""TritonEmotionModel against a stub that speaks Triton's HTTP/REST protocol (tests/serving/kserve_stub.py),
serving an ``emolens export-triton`` repository: the Analyzer's results through Triton equal the local ones
(binary and JSON tensors, TTA, batches cut to the server's max_batch_size); failures are BackendError."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from emolens.errors import BackendError, InvalidInput
from emolens.inference.analyzer import Analyzer
from emolens.inference.onnx_model import EmotionModel, FaceClassifier
from emolens.inference.shipped import resolve_model
from emolens.results import ImageResult
from emolens.serving.triton_client import TritonEmotionModel
from emolens.serving.triton_repo import export_repository

from .kserve_stub import StubTriton, serve

pytest.importorskip("tritonclient.http")
MAX_BATCH = 3
PHOTOS = ("face_recognition_two_people.jpg", "dlib_bald_guys.jpg", "wujie_crying_woman.jpg", "fer_justin.jpg",
          "dlib_dogs.jpg")


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, StubTriton]]:
    repo = tmp_path_factory.mktemp("triton_client") / "models"
    export_repository(repo, ["fer7", "ferplus8", "keypoints15"], max_batch_size=MAX_BATCH)
    with serve(repo) as running:
        yield running


def _faces(result: ImageResult) -> list[dict[str, object]]:
    return [{k: v for k, v in f.to_dict().items() if k != "probabilities"} for f in result.faces]


def _same(remote: ImageResult, local: ImageResult) -> None:
    assert _faces(remote) == _faces(local)  # boxes, emotion, keypoints, pose, ...
    for a, b in zip(remote.faces, local.faces, strict=True):
        assert list(a.probabilities) == list(b.probabilities)
        assert np.allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-9, rtol=0)


def test_it_has_the_surface_the_analyzer_uses(triton: tuple[str, StubTriton]) -> None:
    url, _ = triton
    model = TritonEmotionModel(url, "ferplus8")
    local = EmotionModel(resolve_model("ferplus8"))
    assert isinstance(model, FaceClassifier)
    assert model.name == "ferplus8" and model.labels == local.labels and model.meta == local.meta
    assert model.max_batch_size == MAX_BATCH and model.temperature == local.temperature
    an = Analyzer(model=model)
    assert an.model is model and an.labels == local.labels and an.model_name == "ferplus8"


@pytest.mark.parametrize("binary", [True, False])
def test_predict_equals_the_local_model(triton: tuple[str, StubTriton], binary: bool,
                                        rng: np.random.Generator) -> None:
    url, stub = triton
    crops = [rng.integers(0, 256, (int(rng.integers(30, 90)), int(rng.integers(30, 90)), 3), dtype=np.uint8)
             for _ in range(8)]
    model, local = TritonEmotionModel(url, "fer7", binary=binary), EmotionModel(resolve_model("fer7"))
    before = len(stub.batches)
    for tta in (False, True):
        got, want = model.predict(crops, batch_size=5, tta=tta), local.predict(crops, batch_size=5, tta=tta)
        assert got.shape == (8, 7) and np.allclose(got, want, atol=1e-9, rtol=0)
    # crops in batches of 5 (5 + 3), each cut to the server's limit of 3; TTA sends each batch twice
    assert stub.batches[before:] == [3, 2, 3, 3, 2, 3, 2, 3, 3]
    assert model.predict([]).shape == (0, 7)


def test_analyzer_through_triton_equals_local_on_real_photos(triton: tuple[str, StubTriton],
                                                             shared_data: Path) -> None:
    url, _ = triton
    paths = [shared_data / "media" / "photos" / n for n in PHOTOS]
    remote, local = Analyzer(model=TritonEmotionModel(url, "fer7")), Analyzer(model="fer7")
    got = list(remote.analyze_many(paths, batch_size=4))
    want = list(local.analyze_many(paths, batch_size=4))
    assert sum(len(r.faces) for r in want) >= 8 and [r.source for r in got] == [r.source for r in want]
    for a, b in zip(got, want, strict=True):
        _same(a, b)
    _same(remote.analyze(paths[0]), local.analyze(paths[0]))
    with ThreadPoolExecutor(2) as pool:  # one model shared by threads: each thread has its own client
        for a, b in zip(pool.map(remote.analyze, paths), want, strict=True):
            _same(a, b)


def test_analyzer_through_triton_equals_local_on_generated_faces(triton: tuple[str, StubTriton],
                                                                 rng: np.random.Generator) -> None:
    url, _ = triton
    crops = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(4)]
    remote, local = Analyzer(model=TritonEmotionModel(url, "fer7"), tta=True), Analyzer(model="fer7", tta=True)
    for a, b in zip(remote.classify_crops(crops), local.classify_crops(crops), strict=True):
        assert a.keys() == b.keys() and np.allclose(list(a.values()), list(b.values()), atol=1e-9, rtol=0)
    for crop in crops:
        _same(remote.analyze(crop, cropped=True), local.analyze(crop, cropped=True))


def test_backend_parameters_beside_the_metadata_are_ignored(tmp_path: Path) -> None:
    export_repository(tmp_path, ["fer7"])
    config = tmp_path / "fer7" / "config.pbtxt"
    config.write_text(config.read_text() + 'parameters { key: "execution_mode" value { string_value: "sequential" } }\n'
                      'parameters { key: "intra_op_thread_count" value { string_value: "1" } }\n')
    with serve(tmp_path) as (url, _):
        model = TritonEmotionModel(url, "fer7")
        assert model.meta == EmotionModel(resolve_model("fer7")).meta


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_failures_are_backend_errors_naming_server_and_model(triton: tuple[str, StubTriton]) -> None:
    url, _ = triton
    with pytest.raises(BackendError, match="fer9"):
        TritonEmotionModel(url, "fer9")
    with pytest.raises(BackendError, match="not an emotion model"):
        TritonEmotionModel(url, "keypoints15")
    dead = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(BackendError, match=dead):
        TritonEmotionModel(dead, "fer7", timeout_s=5)
    with pytest.raises(InvalidInput):
        TritonEmotionModel("", "fer7")
    with pytest.raises(InvalidInput):
        TritonEmotionModel(url, "fer7").predict([np.zeros((9, 9), np.uint8)], batch_size=0)

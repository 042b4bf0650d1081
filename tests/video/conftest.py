"""Fixtures of the video tests: a tiny ONNX model and analyzers that "see" the synthetic squares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from emolens.inference.analyzer import Analyzer
from tests.inference.modelfactory import make_model

from .synth import SquareDetector


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Class 0 (anger) for crops bright on the left, class 1 (disgust) for bright on the right."""
    return make_model(tmp_path_factory.mktemp("video-model") / "tiny.onnx")


@pytest.fixture()
def square_analyzer(tiny_model: Path) -> Callable[..., Analyzer]:
    """``square_analyzer(**kw)``: an Analyzer over the tiny model that detects the drawn squares."""

    def make(**kw: object) -> Analyzer:
        return Analyzer(tiny_model, detector=SquareDetector(**kw), align=False, min_face=8)  # type: ignore[arg-type]

    return make

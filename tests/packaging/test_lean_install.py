"""The core install (``pip install .``, no extras) runs ``emolens analyze``; every other command names the
extra it needs. Built in a fresh virtual environment, as a new user would (slow: about a minute)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolens.errors import MissingExtra
from emolens.extras import EXTRA_OF_MODULE, missing_extra

REPO = Path(__file__).resolve().parents[2]


def test_missing_module_names_its_extra() -> None:
    err = missing_extra(ModuleNotFoundError("No module named 'scipy.optimize'", name="scipy.optimize"), "video")
    assert isinstance(err, MissingExtra) and err.extra == "video"
    assert "emolens video" in str(err) and "pip install 'emolens[video]'" in str(err)
    assert missing_extra(ModuleNotFoundError("x", name="not_ours")) is None
    assert set(EXTRA_OF_MODULE.values()) <= {"video", "campaign", "serve", "train", "cluster", "dlib"}


def test_cli_names_the_extra_when_a_package_is_missing(tmp_path: Path) -> None:
    """In this (full) environment, hide scipy the way a core install lacks it: `emolens video` says which extra."""
    code = ("import sys; sys.modules['scipy'] = None; from emolens.cli import main; "
            f"sys.exit(main(['video', {str(tmp_path / 'clip.mp4')!r}]))")
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 10)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == MissingExtra.exit_code, out.stderr
    assert "pip install 'emolens[video]'" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_core_install_analyzes_and_names_extras(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
                         capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        pytest.fail(f"pip install . failed: {pip.stderr[-2000:]}")
    heavy = ("torch", "scipy", "pandas", "fastapi", "matplotlib", "sklearn", "pyarrow", "av")
    probe = f"import importlib.util as u; print([m for m in {heavy!r} if u.find_spec(m)])"
    assert subprocess.run([str(py), "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "crop.png")
    emolens = env_dir / "bin" / "emolens"
    run = subprocess.run([str(emolens), "analyze", str(tmp_path / "crop.png"), "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert '"whole_image": true' in run.stdout  # the small crop analysed as one face, flagged
    for command, extra in (["video", "x.mp4"], "video"), (["serve"], "serve"), \
            (["train", "--arch", "tiny", "--out", "run"], "train"):
        out = subprocess.run([str(emolens), *command], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == MissingExtra.exit_code, (command, out.stdout, out.stderr)
        assert f"emolens[{extra}]" in out.stderr and "Traceback" not in out.stderr, (command, out.stderr)

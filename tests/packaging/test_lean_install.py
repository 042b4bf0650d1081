"""The core install (``pip install .``, no extras) runs ``emolens analyze``; every other command names the
extra it needs. Built in a fresh virtual environment, as a new user would (slow: about a minute)."""

from __future__ import annotations

import json
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
    assert set(EXTRA_OF_MODULE.values()) <= {"opencv", "video", "campaign", "serve", "train", "cluster", "dlib"}
    # A command names the extra it needs as a whole, not a smaller one it includes (one install is enough).
    no_cv2 = ModuleNotFoundError("No module named 'cv2'", name="cv2")
    assert missing_extra(no_cv2, "video").extra == "video"  # type: ignore[union-attr]
    assert missing_extra(no_cv2, "serve").extra == "serve"  # type: ignore[union-attr]
    assert missing_extra(no_cv2, "analyze").extra == "opencv"  # type: ignore[union-attr]
    assert missing_extra(ModuleNotFoundError("x", name="ray"), "video").extra == "cluster"  # type: ignore[union-attr]


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
    heavy = ("torch", "scipy", "pandas", "fastapi", "matplotlib", "sklearn", "pyarrow", "av", "cv2")
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
            (["train", "--arch", "tiny", "--out", "run"], "train"), \
            (["analyze", str(tmp_path / "crop.png"), "--annotate", "ann"], "opencv"):
        out = subprocess.run([str(emolens), *command], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == MissingExtra.exit_code, (command, out.stdout, out.stderr)
        assert f"emolens[{extra}]" in out.stderr and "Traceback" not in out.stderr, (command, out.stderr)


@pytest.mark.slow
def test_core_install_without_opencv_agrees_with_opencv(tmp_path: Path) -> None:
    """The core install runs emolens.imgops on numpy; on the media photos it finds the same faces as the full
    install (OpenCV) and reads the same emotions on nearly all of them."""
    photos = REPO.parent / "shared" / "data" / "media" / "photos"
    if not photos.is_dir():
        pytest.skip("../shared/data/media/photos not present")
    code = ("import sys, json; sys.modules['cv2'] = None; from emolens.cli import main; "
            f"sys.exit(main(['analyze', {str(photos)!r}, '--format', 'json']))")
    runs = {}
    for name, prog in (("numpy", code), ("opencv", code.replace("sys.modules['cv2'] = None; ", ""))):
        out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=600)
        assert out.returncode in (0, 8), out.stderr
        runs[name] = {r["source"]: r for r in json.loads(out.stdout)["images"]}
    assert runs["numpy"].keys() == runs["opencv"].keys() and len(runs["opencv"]) >= 10
    faces = same = 0
    for src, ref in runs["opencv"].items():
        got = runs["numpy"][src]
        assert len(got["faces"]) == len(ref["faces"]), src
        for a, b in zip(got["faces"], ref["faces"], strict=True):
            assert max(abs(u - v) for u, v in zip(a["box"], b["box"], strict=True)) <= 3, (src, a["box"], b["box"])
            faces += 1
            same += a["emotion"] == b["emotion"]
    assert faces >= 30 and same >= 0.9 * faces, (same, faces)

"""Each extra, installed alone in a fresh virtual environment (``pip install 'emolens[EXTRA]'``), is enough for
its commands: a real command runs there on tiny generated data and writes its outputs, and the heavy packages
of the other extras are not pulled in. A dependency missing from an extra would otherwise only show up for a
user (the full ``.venv`` of the test suite has every extra, so it hides such a gap).

Slow (a fresh venv and a pip install per extra, from the local package index: no network), but run in CI like
every ``slow`` test: ``scripts/test.sh`` does not deselect them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
import venv
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from ..conftest import SHARED
from ..train.synthetic import write_fer2013_csv

REPO = Path(__file__).resolve().parents[2]
TORCH_PIN = "torch==2.13.0"  # the local CPU build, as scripts/test.sh and bench/install_size.py pin it
REAL_FACE = SHARED / "media" / "photos" / "fer_justin.jpg"  # used for dlib when ../shared/data is there

# Top-level modules of the extras' heavy packages, and which of them each extra must (and may only) bring.
VIDEO = {"scipy", "pyarrow", "av", "matplotlib"}
SERVE = {"fastapi", "uvicorn", "multipart", "pydantic_settings", "fastapi_offline"}
TRAIN = {"torch", "onnxscript", "sklearn", "optuna"}
CLUSTER = {"ray", "tritonclient"}
PROBED = sorted(VIDEO | SERVE | TRAIN | CLUSTER | {"cv2", "pandas", "onnx", "dlib"})
BRINGS: dict[str, set[str]] = {
    "opencv": {"cv2"},
    "video": VIDEO | {"cv2"},
    "campaign": VIDEO | {"cv2", "pandas"},
    "serve": VIDEO | {"cv2", "pandas"} | SERVE,
    "train": VIDEO | {"cv2", "pandas", "onnx"} | TRAIN,
    "cluster": CLUSTER | {"onnx"},  # no OpenCV: its actors run the core's numpy image operations
    "dlib": {"dlib"},
}


# ------------------------------------------------------------------ generated data


def drawn_face(size: int = 224, shift: int = 0) -> np.ndarray:
    """A BGR cartoon face (skin oval, hair, eyes with brows, nose, smiling mouth) that YuNet, the default
    detector, finds: a real face for the whole pipeline without any file from outside the test."""
    img = np.full((size, size, 3), (200, 190, 180), np.uint8)
    c, s = size // 2 + shift, size / 224

    def p(dx: float, dy: float) -> tuple[int, int]:
        return int(c + dx * s), int(size // 2 + dy * s)

    def r(a: float, b: float) -> tuple[int, int]:
        return int(a * s), int(b * s)

    width = max(1, int(4 * s))
    cv2.ellipse(img, p(0, 0), r(62, 82), 0, 0, 360, (150, 175, 215), -1)
    cv2.ellipse(img, p(0, -70), r(66, 30), 0, 180, 360, (30, 40, 60), -1)
    for dx in (-26, 26):
        cv2.ellipse(img, p(dx, -12), r(13, 7), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, p(dx, -12), int(5 * s), (40, 30, 20), -1)
        cv2.line(img, p(dx - 14, -28), p(dx + 14, -30), (40, 50, 70), width)
    cv2.line(img, p(0, -5), p(-6, 20), (110, 130, 170), max(1, int(3 * s)))
    cv2.ellipse(img, p(0, 40), r(24, 10), 0, 0, 180, (60, 60, 170), width)
    return cv2.GaussianBlur(img, (5, 5), 0)


def write_clip(path: Path, frames: int, face: bool = True) -> Path:
    """An MJPG .avi at 10 fps: the drawn face moving a little, or (``face=False``) plain grey frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (224, 224))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(drawn_face(shift=i % 4) if face else np.full((224, 224, 3), 40 + i % 5, np.uint8))
    writer.release()
    return path


def face_png(tmp_path: Path) -> Path:
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), drawn_face())
    return path


def fer2013_csv(path: Path) -> Path:
    """A tiny FER2013-style csv.gz (emotion,pixels,Usage): 7 learnable 48x48 patterns, a few per split."""
    return write_fer2013_csv(path, (35, 14, 14))


# ------------------------------------------------------------------ the fresh environment


class Env:
    """A fresh venv with ``emolens[extra]`` installed; runs commands in it with a clean environment."""

    def __init__(self, root: Path, extra: str) -> None:
        self.root, self.dir = root, root / f"venv-{extra}"
        venv.EnvBuilder(with_pip=True).create(self.dir)
        self.python, self.emolens = self.dir / "bin" / "python", self.dir / "bin" / "emolens"
        pins = [TORCH_PIN] if extra == "train" else []
        pip = subprocess.run([str(self.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins,
                              f"{REPO}[{extra}]"], capture_output=True, text=True, timeout=1200, env=self.env())
        if pip.returncode != 0:
            pytest.fail(f"pip install 'emolens[{extra}]' failed: {pip.stderr[-3000:]}")

    def env(self) -> dict[str, str]:
        """No EMOLENS_* setting and no PYTHONPATH from the test run; caches and norms under the test folder."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("EMOLENS_", "PYTHONPATH", "PYTHONHOME"))}
        return {**keep, "EMOLENS_CACHE": str(self.root / "cache"), "EMOLENS_NORMS": str(self.root / "norms.sqlite")}

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``emolens ARGS`` in the venv; fails the test (with its stderr) unless it exits 0."""
        out = subprocess.run([str(self.emolens), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                             cwd=self.root, env=self.env())
        assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-3000:])
        assert "Traceback" not in out.stderr
        return out

    def python_out(self, code: str, timeout: float = 120) -> str:
        out = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, timeout=timeout,
                             cwd=self.root, env=self.env())
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.strip()

    def installed(self, modules: list[str]) -> set[str]:
        probe = f"import importlib.util as u; print(','.join(m for m in {modules!r} if u.find_spec(m)))"
        return {m for m in self.python_out(probe).split(",") if m}


# ------------------------------------------------------------------ one real command per extra


def check_video(env: Env, tmp: Path) -> None:
    """Tracking (SciPy), Parquet (PyArrow), the H.264 annotated video (PyAV) and timelines (Matplotlib)."""
    out = tmp / "out"
    run = env.run("video", write_clip(tmp / "clip.avi", 10), "--out", out, "--annotate", "--no-show",
                  "--no-progress", "-f", "json")
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(run.stdout)["frames"] == summary["frames"] == 10
    assert summary["tracks_count"] == 1 and summary["face_rows"] >= 8  # the drawn face, tracked
    assert len((out / "frames.csv").read_text().splitlines()) == 1 + summary["face_rows"]
    for name in ("tracks.csv", "frames.parquet", "seconds.parquet", "annotated.mp4"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "timelines").glob("*.png"))


def check_campaign(env: Env, tmp: Path) -> None:
    """``campaign analyze`` (pandas) on two viewers of one ad: one with a face, one without (excluded)."""
    write_clip(tmp / "face.avi", 20)
    write_clip(tmp / "blank.avi", 20, face=False)
    manifest = tmp / "m.yaml"
    manifest.write_text("ads:\n  - {name: spot, duration_s: 2}\nrecordings:\n"
                        "  - {viewer: v1, ad: spot, recording: face.avi}\n"
                        "  - {viewer: v2, ad: spot, recording: blank.avi}\n")
    out = tmp / "out"
    run = env.run("campaign", "analyze", manifest, "--out", out, "--bootstrap", "20", "--no-progress", "--no-norms")
    assert "excluded: v2 / spot" in run.stdout
    summary = json.loads((out / "summary.json").read_text())
    (ad,) = summary["ads"]
    assert ad["kpis"]["face_found_rate"]["value"] == 1.0
    for name in ("kpis.csv", "series.csv", "series.parquet", "report.html"):
        assert (out / name).stat().st_size > 0, name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _multipart(field: str, path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def check_serve(env: Env, tmp: Path) -> None:
    """``emolens serve`` (FastAPI, uvicorn, python-multipart) on a free port: /healthz, then one POST /v1/analyze
    with urllib (the serve extra does not bring httpx, which Starlette's TestClient needs)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen([str(env.emolens), "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp, env=env.env())
    try:
        deadline, health = time.monotonic() + 180, None
        while health is None:
            assert server.poll() is None, (tmp / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
                    health = json.loads(resp.read())
            except OSError:
                time.sleep(0.5)
        assert health["status"] == "ok" and health["model"]
        body, ctype = _multipart("file", face_png(tmp))
        req = urllib.request.Request(f"{base}/v1/analyze", data=body, headers={"Content-Type": ctype}, method="POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 200
            result = json.loads(resp.read())
        assert len(result["faces"]) == 1 and result["faces"][0]["emotion"], result
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def check_train(env: Env, tmp: Path) -> None:
    """Train one epoch of the tiny net (torch) on a generated FER2013 csv, then export it to ONNX (onnx,
    onnxscript) and evaluate the export's metrics (scikit-learn)."""
    data = fer2013_csv(tmp / "fer2013.csv.gz")
    common = ["--data", data, "--dataset", "fer2013"]
    env.run("train", *common, "--arch", "tiny", "--epochs", "1", "--batch-size", "16", "--out", "run",
            "--no-progress", "--set", "optim.warmup_epochs=0", timeout=600)
    assert (tmp / "run" / "best.pt").is_file() and (tmp / "run" / "metrics.json").is_file()
    env.run("export", "--checkpoint", tmp / "run" / "best.pt", "--out", tmp / "m.onnx", *common, "--split", "test",
            timeout=600)
    meta = env.python_out("import json, onnxruntime as ort; s = ort.InferenceSession('m.onnx'); "
                          "print(json.dumps(s.get_modelmeta().custom_metadata_map))")
    assert "tiny" in meta and "accuracy" in meta


def check_cluster(env: Env, tmp: Path) -> None:
    """``export-triton`` (onnx, tritonclient's model_config) and ``analyze --ray`` on a local Ray."""
    repo = tmp / "repo"
    env.run("export-triton", "--out", repo)
    configs = list(repo.glob("*/config.pbtxt"))
    assert configs and all((c.parent / "1" / "model.onnx").is_file() for c in configs)
    run = env.run("analyze", face_png(tmp), "--ray", "-f", "json", timeout=300)
    (image,) = json.loads(run.stdout)["images"]
    assert len(image["faces"]) == 1


def check_dlib(env: Env, tmp: Path) -> None:
    """``analyze --detector dlib`` runs dlib's HOG detector (on a real face when ../shared/data is there)."""
    image = REAL_FACE if REAL_FACE.is_file() else face_png(tmp)
    run = env.run("analyze", image, "--detector", "dlib", "-f", "json")
    (result,) = json.loads(run.stdout)["images"]
    assert "faces" in result and not json.loads(run.stdout)["errors"]
    if image == REAL_FACE:
        assert len(result["faces"]) == 1 and result["faces"][0]["detection_score"] > 0.5


def check_opencv(env: Env, tmp: Path) -> None:
    """``analyze --annotate`` (drawing needs OpenCV) writes the annotated copy of a face."""
    run = env.run("analyze", face_png(tmp), "--annotate", tmp / "ann", "-f", "json")
    (result,) = json.loads(run.stdout)["images"]
    assert len(result["faces"]) == 1
    (drawn,) = (tmp / "ann").iterdir()
    assert drawn.stat().st_size > 0


CHECKS: dict[str, Callable[[Env, Path], None]] = {
    "opencv": check_opencv,
    "video": check_video,
    "campaign": check_campaign,
    "serve": check_serve,
    "train": check_train,
    "cluster": check_cluster,
    "dlib": check_dlib,
}


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a hung install or server fails this case, not the CI run
@pytest.mark.parametrize("extra", list(CHECKS))
def test_extra_alone_runs_its_commands(extra: str, tmp_path: Path) -> None:
    env = Env(tmp_path, extra)
    try:
        assert env.installed(PROBED) == BRINGS[extra], f"emolens[{extra}] should bring exactly {sorted(BRINGS[extra])}"
        CHECKS[extra](env, tmp_path)
    finally:
        shutil.rmtree(env.dir, ignore_errors=True)  # up to a GB each (train): not kept in pytest's tmp folders

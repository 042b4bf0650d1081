"""``emolens serve``: options become settings, the model loads before uvicorn starts, errors exit cleanly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from emolens.api import deps
from emolens.api.settings import Settings
from emolens.cli import main
from emolens.errors import ModelFormatError

from ..api.conftest import FakeAnalyzer


@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replaces uvicorn.run and the analyzer factory; returns what they were called with."""
    import uvicorn

    calls: dict[str, Any] = {"built": []}
    for name in list(os.environ):
        if name.startswith("EMOLENS_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(os, "environ", os.environ.copy())  # the command exports settings for workers

    def fake_run(app: Any, **kw: Any) -> None:
        calls["app"], calls["kw"] = app, kw

    def fake_build(settings: Settings) -> FakeAnalyzer:
        calls["built"].append(settings)
        return FakeAnalyzer(settings)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(deps, "build_analyzer", fake_build)
    return calls


def test_serve_runs_the_app_with_the_options(captured: dict[str, Any], tmp_path: Path) -> None:
    argv = [
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8123",
        "--threads",
        "2",
        "--model",
        "m.onnx",
        "--api-key",
        "k",
        "--max-upload-mb",
        "1.5",
        "--max-batch-files",
        "4",
        "--keep-uploads",
        str(tmp_path),
        "--tta",
        "--max-concurrency",
        "3",
    ]
    assert main(argv) == 0
    settings = captured["app"].state.settings
    assert (settings.model, settings.threads, settings.tta, settings.max_batch_files) == (
        "m.onnx",
        2,
        True,
        4,
    )
    assert settings.max_upload_bytes == int(1.5 * 1024 * 1024) and settings.max_concurrency == 3
    assert settings.api_key.get_secret_value() == "k"
    assert settings.keep_uploads and settings.uploads_dir == tmp_path
    assert captured["kw"] == {"host": "0.0.0.0", "port": 8123, "log_level": "info"}
    assert len(captured["built"]) == 1  # loaded before uvicorn started, and only once


def test_environment_fills_what_options_leave_out(captured: dict[str, Any]) -> None:
    os.environ["EMOLENS_MAX_PIXELS"] = "1234"
    os.environ["EMOLENS_MODEL"] = "env.onnx"
    assert main(["serve", "--model", "cli.onnx"]) == 0
    settings = captured["app"].state.settings
    assert (settings.max_pixels, settings.model) == (1234, "cli.onnx")


def test_several_workers_use_the_factory_string_and_the_environment(captured: dict[str, Any]) -> None:
    assert main(["serve", "--workers", "3", "--threads", "1", "--api-key", "k2"]) == 0
    assert captured["app"] == "emolens.api.app:create_app"
    assert captured["kw"]["factory"] is True and captured["kw"]["workers"] == 3
    assert os.environ["EMOLENS_THREADS"] == "1" and os.environ["EMOLENS_API_KEY"] == "k2"
    rebuilt = Settings()  # what each worker reads
    assert rebuilt.threads == 1 and rebuilt.api_key is not None
    assert len(captured["built"]) == 1  # the model was checked once before the workers start


def test_bad_model_exits_with_its_code_before_serving(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(settings: Settings) -> Any:
        raise ModelFormatError(f"{settings.model}: no such model file")

    monkeypatch.setattr(deps, "build_analyzer", broken)
    assert main(["serve", "--model", "missing.onnx"]) == ModelFormatError.exit_code
    assert "missing.onnx" in capsys.readouterr().err
    assert "app" not in captured


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--workers", "0"],
        ["serve", "--port", "70000"],
        ["serve", "--threads", "-1"],
        ["serve", "--max-upload-mb", "0"],
        ["serve", "--log-level", "loud"],
        ["serve", "--no-such-option"],
    ],
)
def test_bad_options_are_refused(captured: dict[str, Any], argv: list[str]) -> None:
    from typer.testing import CliRunner

    from emolens.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "app" not in captured


def test_invalid_setting_from_the_environment_is_a_config_error(
    captured: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["EMOLENS_MAX_BATCH_FILES"] = "many"
    assert main(["serve"]) == 2
    assert "max_batch_files" in capsys.readouterr().err


@pytest.mark.timeout(180)
def test_serve_subprocess_answers_and_stops_on_sigint(tmp_path: Path) -> None:
    """The real command in its own process, on a tiny generated model: health, one analysis, Ctrl-C."""
    import signal
    import subprocess
    import sys
    import time

    import httpx

    pytest.importorskip("emolens.inference.analyzer", reason="the real Analyzer is not written yet")
    modelfactory = pytest.importorskip("tests.inference.modelfactory", reason="needs onnx (dev dependency)")
    from ..api.conftest import image_bytes
    from ..api.live import free_port

    model = modelfactory.make_model(tmp_path / "tiny-fer7.onnx")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOLENS_")}
    cmd = [sys.executable, "-m", "emolens", "serve", "--port", str(port), "--model", str(model)]
    proc = subprocess.Popen([*cmd, "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        health = None
        deadline = time.monotonic() + 120
        while health is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(base + "/healthz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, "the server never answered /healthz"
        assert health.json()["model"] == "tiny-fer7"
        r = httpx.post(base + "/v1/analyze", files={"file": ("a.png", image_bytes("PNG", (64, 48)))}, timeout=60)
        assert r.status_code == 200 and r.json()["width"] == 64
        bad = httpx.post(base + "/v1/analyze", files={"file": ("a.txt", b"text")}, timeout=60)
        assert bad.status_code == 415
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out.decode(errors="replace")


def test_serve_subprocess_with_a_missing_model_fails_fast(tmp_path: Path) -> None:
    import subprocess
    import sys

    pytest.importorskip("emolens.inference.analyzer", reason="the real Analyzer is not written yet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOLENS_")}
    missing = tmp_path / "missing.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "emolens", "serve", "--port", "1", "--model", str(missing)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == ModelFormatError.exit_code
    assert "missing.onnx" in proc.stderr and "Traceback" not in proc.stderr

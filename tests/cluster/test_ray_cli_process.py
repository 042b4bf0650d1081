"""``emolens analyze --ray`` as a user runs it, in its own process with no Ray running: it starts a local
Ray, prints what the plain run prints, shuts Ray down and exits (a hang fails the test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("ray")


def _rows(out: str) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in out.splitlines()]
    for row in rows:
        row.pop("timings_ms", None)
    return rows


def test_analyze_with_ray_from_a_fresh_process(tmp_path: Path, rng: np.random.Generator) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"face{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    (tmp_path / "broken.png").write_text("not an image")
    cmd = [sys.executable, "-m", "emolens", "analyze", str(tmp_path), "--format", "jsonl", "--no-progress"]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    on_ray = subprocess.run([*cmd, "--ray"], capture_output=True, text=True, timeout=300)
    assert plain.returncode == on_ray.returncode == 0, on_ray.stderr[-2000:]
    assert _rows(on_ray.stdout) == _rows(plain.stdout) and len(_rows(plain.stdout)) == 3
    assert "broken.png" in on_ray.stderr

"""bench/progress_curve.py: accuracy against cumulative CPU-hours from run folders' history.csv."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .helpers import bench_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "progress_curve.py"


@pytest.fixture(scope="module")
def pc() -> Iterator[ModuleType]:
    with bench_script("progress_curve") as module:
        yield module


def _run(folder: Path, rows: list[tuple[float, float]], init: str = "") -> Path:
    folder.mkdir(parents=True)
    lines = ["epoch,train_loss,train_acc,val_loss,val_acc,lr,time_s"]
    lines += [f"{i + 1},1.0,0.5,1.0,{acc},0.01,{t}" for i, (acc, t) in enumerate(rows)]
    (folder / "history.csv").write_text("\n".join(lines) + "\n")
    extra = f", init: {init}" if init else ""
    (folder / "config.yaml").write_text(f"model: {{arch: vgg, width: 0.5{extra}}}\ndata: {{dataset: fer2013}}\n")
    return folder


def test_hours_accumulate_epoch_times_and_best_is_found(pc: ModuleType, tmp_path: Path):
    run = _run(tmp_path / "teacher", [(0.30, 1800), (0.52, 1800), (0.50, 3600)])
    c = pc.read_run(run)
    assert c.hours == pytest.approx([0.5, 1.0, 2.0])
    assert c.best == (0.52, pytest.approx(1.0), 2)
    assert c.label == "teacher (vgg w0.5, fer2013)"


def test_script_draws_png_prints_table_and_keeps_histories(pc: ModuleType, tmp_path: Path):
    a = _run(tmp_path / "a", [(0.3, 60), (0.4, 60)])
    b = _run(tmp_path / "b", [(0.5, 7200)])
    out = tmp_path / "progress.png"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(a), str(b), "--out", str(out), "--keep",
                           str(tmp_path / "kept")], capture_output=True, text=True, check=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = proc.stdout.splitlines()
    assert lines[1].split()[:6] == ["a", "2", "0.00", "0.03", "0.4000", "0.03"]
    assert lines[2].split()[:6] == ["b", "1", "0.00", "2.00", "0.5000", "2.00"]
    assert (tmp_path / "kept" / "b" / "history.csv").read_text() == (b / "history.csv").read_text()
    assert pc.read_run(tmp_path / "kept" / "a").val_acc == [0.3, 0.4]  # redrawn from the kept copy


def test_folder_without_history_is_a_clear_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no history.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_run_started_from_another_runs_snapshot_starts_where_that_run_was(pc: ModuleType, tmp_path: Path):
    teacher = pc.read_run(_run(tmp_path / "teacher", [(0.3, 1800), (0.5, 1800), (0.6, 3600)]))
    mid = pc.read_run(_run(tmp_path / "ft_mid", [(0.7, 3600)], init="snapshots/teacher_e2.pt"))
    end = pc.read_run(_run(tmp_path / "ft_end", [(0.8, 1800)], init="snapshots/teacher.pt"))
    polish = pc.read_run(_run(tmp_path / "polish", [(0.9, 1800)], init="snapshots/ft_end.pt"))
    alone = pc.read_run(_run(tmp_path / "alone", [(0.4, 1800)], init="snapshots/not_plotted.pt"))
    placed = {c.name: c for c in pc.chain([polish, mid, teacher, end, alone])}
    assert placed["teacher"].hours == pytest.approx([0.5, 1.0, 2.0]) and placed["teacher"].start == 0
    assert placed["ft_mid"].start == pytest.approx(1.0) and placed["ft_mid"].hours == pytest.approx([2.0])
    assert placed["ft_end"].start == pytest.approx(2.0)
    assert placed["polish"].start == pytest.approx(2.5)  # after ft_end, itself after the teacher
    assert placed["alone"].start == 0 and placed["alone"].hours == pytest.approx([0.5])
    assert "from teacher epoch 2" in placed["ft_mid"].label


def test_a_run_naming_itself_or_a_cycle_of_runs_neither_hangs_nor_moves_twice(pc: ModuleType, tmp_path: Path):
    own = pc.read_run(_run(tmp_path / "own", [(0.5, 3600)], init="snapshots/own.pt"))
    a = pc.read_run(_run(tmp_path / "a", [(0.5, 3600)], init="snapshots/b.pt"))
    b = pc.read_run(_run(tmp_path / "b", [(0.6, 1800)], init="snapshots/a_e1.pt"))
    placed = {c.name: c for c in pc.chain([own, a, b])}
    assert placed["own"].start == 0 and placed["own"].hours == pytest.approx([1.0])
    # a waits for b, b for a: the cycle is cut where it closes (b stays put), so only a moves, after b
    assert placed["b"].start == 0
    assert placed["a"].start == pytest.approx(0.5) and placed["a"].hours == pytest.approx([1.5])

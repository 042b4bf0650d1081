"""Validation accuracy against CPU-hours for training runs: what the next hours of CPU would buy.

Reads each run folder's ``history.csv`` (one row per epoch: ``val_acc`` and ``time_s``, the epoch's
wall-clock seconds including its validation pass) and, when present, its ``config.yaml`` (arch, width,
dataset, threads for the legend). The x axis is the cumulative training time in hours on the machine
that ran it (this project's 2-core CPU: one hour of the machine, both cores); a resumed run counts
only its epochs' own time, not the gaps between sessions. Saves a PNG and prints one line per run.

    .venv/bin/python bench/progress_curve.py ~/emolens-runs/fer2013_vgg_teacher --out docs/models/progress.png

A run that starts from another run's weights (``model.init: snapshots/<run>.pt`` or
``snapshots/<run>_e<N>.pt``, as ``emolens snapshot`` names them) is drawn from where that run was when
its snapshot was taken (its last epoch, or epoch N) when both are plotted: a fine-tune's hours come on
top of its teacher's, so the x axis shows what the shipped model cost in all.

``--keep DIR`` also copies each run's ``history.csv`` and ``config.yaml`` to ``DIR/<run name>/`` (a few
kilobytes), so the curve can be redrawn from the repository after the run folders are gone.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml


@dataclass(frozen=True)
class RunCurve:
    name: str
    label: str
    hours: list[float]  # cumulative, at the end of each epoch (from ``start``)
    val_acc: list[float]
    init: str = ""  # the config's model.init (another run's snapshot), if any
    start: float = 0.0  # hours spent before this run's first epoch (by the run it starts from)

    @property
    def best(self) -> tuple[float, float, int]:
        """(best val acc, hours when reached, its epoch)."""
        i = max(range(len(self.val_acc)), key=self.val_acc.__getitem__)
        return self.val_acc[i], self.hours[i], i + 1


class RunError(Exception):
    """A run folder without a usable history."""


def read_run(folder: Path) -> RunCurve:
    """The curve of one run folder; :class:`RunError` when it has no readable ``history.csv``."""
    path = folder / "history.csv"
    if not path.is_file():
        raise RunError(f"{folder}: no history.csv (is it a run folder?)")
    hours, acc, total = [], [], 0.0
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                total += float(row["time_s"]) / 3600
                acc.append(float(row["val_acc"]))
            except (KeyError, TypeError, ValueError):
                raise RunError(f"{path}:{n}: needs numeric val_acc and time_s columns") from None
            hours.append(total)
    if not acc:
        raise RunError(f"{path}: no epochs yet")
    label, init = _describe(folder)
    return RunCurve(folder.name, label, hours, acc, init)


def _describe(folder: Path) -> tuple[str, str]:
    """(legend label, model.init) from the run's config.yaml."""
    cfg_path = folder / "config.yaml"
    if not cfg_path.is_file():
        return folder.name, ""
    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        model, data = cfg.get("model", {}), cfg.get("data", {})
        label = f"{folder.name} ({model.get('arch')} w{model.get('width')}, {data.get('dataset')})"
        return label, str(model.get("init") or "")
    except (yaml.YAMLError, AttributeError):
        return folder.name, ""


def chain(curves: list[RunCurve]) -> list[RunCurve]:
    """Each curve whose ``init`` is another plotted run's snapshot, moved to start where that run was then."""
    by_name = {c.name: c for c in curves}
    placed: dict[str, RunCurve] = {}

    def place(c: RunCurve, seen: tuple[str, ...] = ()) -> RunCurve:
        if c.name in placed:
            return placed[c.name]
        m = re.fullmatch(r"(.+?)(?:_e(\d+))?", Path(c.init).stem) if c.init else None
        parent = by_name.get(m.group(1)) if m else None
        if parent is None or parent.name == c.name or parent.name in seen:
            placed[c.name] = c
            return c
        parent = place(parent, (*seen, c.name))
        epoch = min(int(m.group(2)) if m and m.group(2) else len(parent.hours), len(parent.hours))
        start = parent.hours[epoch - 1]
        placed[c.name] = replace(c, hours=[h + start for h in c.hours], start=start,
                                 label=f"{c.label}, from {parent.name} epoch {epoch}")
        return placed[c.name]

    return [place(c) for c in curves]


def plot(curves: list[RunCurve], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for i, c in enumerate(curves):
        color = f"C{i % 10}"
        ax.plot(c.hours, c.val_acc, color=color, lw=1.5, marker=".", label=c.label)
        acc, hours, epoch = c.best
        ax.scatter([hours], [acc], color=color, zorder=3)
        ax.annotate(f"{acc:.3f} (epoch {epoch})", (hours, acc), textcoords="offset points",
                    xytext=(-4, 6 if i % 2 == 0 else -14),  # alternate above / below: nearby runs stay legible
                    ha="right", fontsize=8, color=color)
    ax.set_xlabel("CPU-hours of training (2-core machine, wall clock, epochs' time summed)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def keep(folder: Path, dest: Path) -> None:
    """Copy the run's history.csv and config.yaml to ``dest/<run name>/``."""
    target = dest / folder.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("history.csv", "config.yaml"):
        if (folder / name).is_file() and (folder / name).resolve() != (target / name).resolve():
            shutil.copyfile(folder / name, target / name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with history.csv)")
    p.add_argument("--out", type=Path, default=Path("docs/models/progress.png"), help="PNG to write")
    p.add_argument("--title", default="Validation accuracy against CPU time", help="plot title")
    p.add_argument("--keep", type=Path, default=None, help="also copy each run's history.csv and config.yaml here")
    args = p.parse_args(argv)
    try:
        curves = chain([read_run(folder.expanduser()) for folder in args.runs])
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.keep is not None:
        for folder in args.runs:
            keep(folder.expanduser(), args.keep)
    plot(curves, args.out, args.title)
    print(f"{'run':<32} {'epochs':>6} {'starts':>7} {'hours':>7} {'best val acc':>12} {'at hour':>8} {'epoch':>6}")
    for c in curves:
        acc, hours, epoch = c.best
        print(f"{c.name:<32} {len(c.val_acc):>6} {c.start:>7.2f} {c.hours[-1] - c.start:>7.2f} {acc:>12.4f} "
              f"{hours:>8.2f} {epoch:>6}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

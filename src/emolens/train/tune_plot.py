"""The picture of a recipe search: every trial's validation accuracy by epoch, and the best so far."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_study(study: Any, path: str | Path) -> None:
    """Left: validation accuracy per epoch of each trial (pruned ones dashed, the best one bold);
    right: each trial's best validation accuracy in trial order, with the running best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    trials = [t for t in study.trials if t.intermediate_values]
    best_number = max(trials, key=lambda t: max(t.intermediate_values.values())).number if trials else -1
    fig, (curves, order) = plt.subplots(1, 2, figsize=(12, 4.5))
    for t in trials:
        steps = sorted(t.intermediate_values)
        values = [t.intermediate_values[s] for s in steps]
        pruned = t.state.name == "PRUNED"
        style = {"lw": 2.5, "color": "C3", "zorder": 3, "label": f"best: trial {t.number}"} \
            if t.number == best_number else {"lw": 1, "alpha": 0.6, "ls": "--" if pruned else "-"}
        curves.plot(steps, values, marker=".", **style)
    curves.set_xlabel("epoch")
    curves.set_ylabel("validation accuracy")
    curves.set_title("trials (dashed: pruned)")
    curves.grid(alpha=0.3)
    if trials:
        curves.legend(loc="lower right")
    running = -1.0
    xs, best_so_far = [], []
    for t in trials:
        v = max(t.intermediate_values.values())
        running = max(running, v)
        xs.append(t.number)
        best_so_far.append(running)
        order.scatter(t.number, v, marker="x" if t.state.name == "PRUNED" else "o",
                      color="gray" if t.state.name == "PRUNED" else "C0", zorder=3)
    order.step(xs, best_so_far, where="post", color="C3", label="best so far")
    order.set_xlabel("trial")
    order.set_ylabel("best validation accuracy")
    order.set_title("by trial (x: pruned)")
    order.grid(alpha=0.3)
    if trials:
        order.legend(loc="lower right")
    for ax in (curves, order):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"emolens tune: study {study.study_name!r}, {len(study.trials)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

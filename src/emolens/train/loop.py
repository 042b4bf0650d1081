"""The epoch loop both trainers share: early stopping on a validation metric and a time limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence


def patience_exhausted(history: Sequence[Mapping[str, float]], key: str, patience: int,
                       higher_is_better: bool = True) -> bool:
    """True when the best ``key`` in ``history`` is ``patience`` or more epochs old (``patience`` <= 0: never)."""
    if patience <= 0 or len(history) <= patience:
        return False
    pick = max if higher_is_better else min
    best = pick(range(len(history)), key=lambda i: history[i][key])
    return len(history) - 1 - best >= patience


def run_epochs(start: int, epochs: int, run_epoch: Callable[[int], None], should_stop: Callable[[], bool],
               time_limit_s: float | None) -> bool:
    """Call ``run_epoch(e)`` for ``e`` in ``[start, epochs)`` until ``should_stop()`` (early stopping: returns
    True) or ``time_limit_s`` seconds have passed before an epoch starts (returns False, resumable)."""
    t0 = time.monotonic()
    for epoch in range(start, epochs):
        if should_stop():
            return True
        if time_limit_s is not None and time.monotonic() - t0 > time_limit_s:
            return False
        run_epoch(epoch)
    return False

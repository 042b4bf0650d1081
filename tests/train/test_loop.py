from __future__ import annotations

from emolens.train.loop import patience_exhausted, run_epochs


def test_patience_counts_epochs_since_the_best() -> None:
    hist = [{"m": v} for v in (0.1, 0.5, 0.4, 0.3)]
    assert not patience_exhausted(hist, "m", 3)  # best at epoch 2, two epochs ago
    assert patience_exhausted(hist, "m", 2)
    assert not patience_exhausted(hist, "m", 0)  # 0 = never
    assert patience_exhausted([{"m": v} for v in (0.1, 0.5, 0.6)], "m", 2, higher_is_better=False)
    assert not patience_exhausted([{"m": v} for v in (0.5, 0.1, 0.6)], "m", 2, higher_is_better=False)


def test_run_epochs_stops_early_or_on_time() -> None:
    seen: list[int] = []
    assert not run_epochs(2, 5, seen.append, lambda: False, None)
    assert seen == [2, 3, 4]
    seen.clear()
    assert run_epochs(0, 5, seen.append, lambda: len(seen) >= 2, None) and seen == [0, 1]
    seen.clear()
    assert not run_epochs(0, 5, seen.append, lambda: False, -1.0) and seen == []  # limit already passed

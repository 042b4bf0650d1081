"""Time-aware exponential smoothing of emotion probabilities, one running average per track.

With smoothing factor ``a`` (0 <= a < 1), a new probability vector ``p`` seen ``dt`` seconds after
the previous one updates the running value ``s`` as::

    k = a ** (dt / reference_dt)          # the weight the past keeps
    s = k * s + (1 - k) * p

``a`` is the weight the past keeps over one reference interval (1/30 s by default): at 30 fps
``a = 0.8`` means the classic per-frame EMA with factor 0.8. Gaps (skipped frames, ``--every N``,
dropped webcam frames) let the past fade by as much as the time that passed, so the result depends
on video time, not on how many frames were classified. ``a = 0`` turns smoothing off (the raw
probabilities come back unchanged). The smoothed vector still sums to 1.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np

from ..errors import InvalidInput

REFERENCE_DT = 1.0 / 30.0


def half_life_s(alpha: float, reference_dt: float = REFERENCE_DT) -> float:
    """Seconds after which an observation's weight has halved under factor ``alpha`` (0 for alpha 0)."""
    if alpha <= 0.0:
        return 0.0
    return float(reference_dt * np.log(0.5) / np.log(alpha))


class EmaSmoother:
    """Running time-aware EMA per key (track id); see the module docstring."""

    def __init__(self, alpha: float, reference_dt: float = REFERENCE_DT) -> None:
        if not 0.0 <= alpha < 1.0:
            raise InvalidInput(f"smoothing must be in [0, 1) (0 = off), got {alpha}")
        if reference_dt <= 0:
            raise InvalidInput(f"reference_dt must be positive, got {reference_dt}")
        self.alpha, self.reference_dt = float(alpha), float(reference_dt)
        self._state: dict[Hashable, tuple[np.ndarray, float]] = {}

    def update(self, key: Hashable, probs: np.ndarray, t: float) -> np.ndarray:
        """Fold ``probs`` seen at time ``t`` into ``key``'s average; returns the new average.

        A first observation, or ``alpha == 0``, returns ``probs`` itself. A time that does not move
        forward counts as one reference interval."""
        p = np.asarray(probs, dtype=np.float64)
        prev = self._state.get(key)
        if prev is None or self.alpha == 0.0:
            value = p.copy()
        else:
            old, t_old = prev
            dt = t - t_old if t > t_old else self.reference_dt
            keep = self.alpha ** (dt / self.reference_dt)
            value = keep * old + (1.0 - keep) * p
        self._state[key] = (value, float(t))
        return value.copy()

    def value(self, key: Hashable) -> np.ndarray | None:
        """The current average of ``key`` (None when never updated or forgotten)."""
        prev = self._state.get(key)
        return None if prev is None else prev[0].copy()

    def forget(self, keys: Iterable[Hashable]) -> None:
        """Drop the state of ``keys`` (tracks that ended)."""
        for k in keys:
            self._state.pop(k, None)

    def keep_only(self, keys: Iterable[Hashable]) -> None:
        """Drop every key not in ``keys``."""
        alive = set(keys)
        self.forget([k for k in self._state if k not in alive])

    def __len__(self) -> int:
        return len(self._state)

"""Partial results are marked as partial: the warnings that say what a result misses.

A video whose frames could not all be decoded, a batch with unreadable files, a campaign with a
recording that failed: the result is still useful, but it must not pass for a whole one. Producers
collect a ``warnings`` list (in results, job records and JSON outputs); a job with warnings ends
``partial`` instead of ``succeeded`` and the CLI exits with :data:`PARTIAL_EXIT_CODE`.
"""

from __future__ import annotations

from typing import Any

PARTIAL_EXIT_CODE = 8
"""CLI exit code of a run that produced a result with parts missing (the outputs are written)."""


def video_warnings(progress: Any) -> list[str]:
    """Warnings for a video stream's final progress (:class:`~emolens.video.stream.VideoProgress`):
    frames that could not be decoded, frames the file announced but never gave. None or a progress
    without those figures gives none."""
    out = []
    broken = int(getattr(progress, "broken_frames", 0) or 0)
    missing = int(getattr(progress, "missing_frames", 0) or 0)
    if broken:
        out.append(f"{broken} frame(s) could not be decoded and were skipped")
    if missing:
        out.append(f"{missing} frame(s) the file announced never came (truncated file?)")
    return out

"""Probing the videos of a study: an uploaded ad, and a viewer's WebM recording.

``MediaRecorder`` writes WebM while it records, so the file it ends with says neither its duration
nor its frame count (OpenCV reports a huge negative count, PyAV no duration). Every frame still
carries its timestamp, so where the container does not say, the duration is measured by walking
the frames (:func:`last_frame_time`): the last frame's time plus one frame interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from ..errors import EmolensError, UnsupportedMedia

AD_SUFFIXES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg",
               ".mov": "video/quicktime", ".mkv": "video/x-matroska"}
"""Ad files a browser may play, with the media type they are served as."""


@dataclass(frozen=True)
class VideoFacts:
    """What a study needs to know of a video: frame size, duration (seconds), frames walked."""

    width: int
    height: int
    duration_s: float


def last_frame_time(path: Path) -> tuple[float, int, float | None]:
    """(time of the last decodable frame in seconds, frames counted, nominal fps or None)
    by walking the file; ``(-1, 0, fps)`` when no frame decodes."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return -1.0, 0, None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        last, count = -1.0, 0
        while cap.grab():
            ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            count += 1
            if ms is not None and ms >= 0:
                last = max(last, ms / 1000.0)
        return last, count, (fps if 0 < fps < 1000 else None)
    finally:
        cap.release()


def video_facts(path: Path, name: str, max_pixels: int | None = None) -> VideoFacts:
    """Frame size and duration of ``path`` (a video called ``name`` by the client).

    :class:`UnsupportedMedia` naming ``name`` (never the server path) when it is not a video or
    has no decodable frame; :class:`~emolens.errors.MediaTooLarge` over ``max_pixels``."""
    from ..video.reader import FrameReader

    try:
        with FrameReader(path, max_pixels=max_pixels) as reader:
            info = reader.info
    except EmolensError as err:
        message = str(err).replace(str(path), name)
        raise type(err)(message) from None
    duration = info.duration_s
    if duration is None or duration <= 0:
        last, count, fps = last_frame_time(path)
        if count == 0:
            raise UnsupportedMedia(f"{name}: no frame of this video can be decoded")
        duration = last + 1.0 / (fps or 30.0)
    return VideoFacts(info.width, info.height, float(duration))

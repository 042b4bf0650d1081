"""Annotated viewer videos for the report's drill-down: the analysed frames of a recording's ad
window with the viewer's face box, emotion and bars, as a browser-playable H.264 MP4.

Drawn from the frame table (the cache holds the box and probabilities of every analysed frame), so a
cached re-run needs no new analysis: the recording is decoded once more, sequentially, and the frame
nearest each analysed time is annotated (:func:`emolens.video.writer.draw_frame`) and written at the
analysis rate (``sample_fps``) by :class:`emolens.video.writer.H264Sink`, at most
:data:`MAX_WIDTH` pixels wide. With ``blur`` the face is pixelated first. A recording that cannot be
decoded gives no video (a warning), never an error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..results import FaceResult, FrameResult
from .outputs import safe_name

log = logging.getLogger(__name__)

MAX_WIDTH = 480
FOLDER = "videos"


def _face(row: pd.Series, labels: Sequence[str], scale: float) -> FaceResult | None:
    if not bool(row["face_found"]) or not all(math.isfinite(float(row[c])) for c in ("x", "y", "w", "h")):
        return None
    probs = {lb: float(row[lb]) for lb in labels}
    box = tuple(round(float(row[c]) * scale) for c in ("x", "y", "w", "h"))
    return FaceResult(box, 1.0, max(probs, key=lambda k: probs[k]), probs)  # type: ignore[arg-type]


def _frames_at(path: Path, times: np.ndarray) -> list[np.ndarray | None]:
    """The RGB frame nearest each time (sorted), decoding the video once from the first time."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    out: list[np.ndarray | None] = [None] * len(times)
    try:
        if not cap.isOpened() or not len(times):
            return out
        cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, float(times[0]) * 1000 - 200))
        i, prev = 0, None
        while i < len(times):
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            while i < len(times) and t >= times[i]:
                out[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                i += 1
            prev = bgr
        while i < len(times) and prev is not None:  # past the end: the last frame
            out[i] = cv2.cvtColor(prev, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()
    return out


def write_viewer_video(recording: Path, frames: pd.DataFrame, labels: Sequence[str], fps: float, out_dir: Path,
                       ad: str, viewer: str, blur: bool = False) -> str | None:
    """Writes ``videos/<ad>_<viewer>.mp4`` from the frame table of one video recording (its rows in
    the ad window) and returns its path relative to ``out_dir``; None when nothing could be drawn."""
    from ..video.writer import H264Sink, draw_frame

    rows = frames.sort_values("t").reset_index(drop=True)
    if not len(rows):
        return None
    images = _frames_at(recording, rows["t"].to_numpy(dtype=float))
    rel = f"{FOLDER}/{safe_name(ad)}_{safe_name(viewer)}.mp4"
    sink = None
    try:
        for k, rgb in enumerate(images):
            if rgb is None:
                continue
            h, w = rgb.shape[:2]
            scale = min(1.0, MAX_WIDTH / w)
            if scale < 1.0:
                rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            face = _face(rows.iloc[k], labels, scale)
            frame = FrameResult(k, float(rows["t"].iloc[k]), rgb.shape[1], rgb.shape[0],
                                () if face is None else (face,))
            if sink is None:
                (out_dir / FOLDER).mkdir(parents=True, exist_ok=True)
                sink = H264Sink(out_dir / rel, fps, (rgb.shape[1], rgb.shape[0]))
            img = draw_frame(rgb, frame, blur=blur)
            sink.write(img if img.shape[:2] == (sink.size[1], sink.size[0]) else
                       cv2.resize(img, sink.size, interpolation=cv2.INTER_AREA))
    finally:
        if sink is not None:
            sink.close()
    if sink is None:
        log.warning("%s: no frame could be read for the annotated video", recording)
        return None
    return rel

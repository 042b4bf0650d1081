"""Decode a video file or a webcam into upright RGB frames with stream timestamps, one at a time.

:class:`FrameReader` opens the source at once (so a bad file fails before any frame, with
:class:`~emolens.errors.UnsupportedMedia` naming it) and then yields :class:`Frame` objects:

* **timestamps** come from the stream (``CAP_PROP_POS_MSEC``, the presentation time of the frame
  just decoded), so variable-frame-rate files keep their real timing; they are forced to increase
  (a missing or repeated stamp becomes the previous one plus one nominal frame interval). Webcams
  use the wall clock since the first frame.
* **rotation** metadata is honoured: OpenCV's FFmpeg backend rotates frames itself
  (``CAP_PROP_ORIENTATION_AUTO``); where a backend does not, the frame is rotated here by
  ``CAP_PROP_ORIENTATION_META``.
* **broken frames** (a decode failure followed by good frames) are skipped and counted in
  :attr:`FrameReader.broken`; a stream that stops early (a truncated file) ends quietly and
  :attr:`FrameReader.truncated` says how many frames the container promised but never delivered.
* ``loop`` reads a file several times in a row, time continuing (soak tests, benchmarks).
* ``prefetch`` > 0 decodes in a background thread, that many frames ahead (OpenCV releases the
  GIL while decoding, so decoding overlaps detection). A webcam does not wait for a slow consumer:
  when the queue is full the oldest frame is dropped and counted in :attr:`FrameReader.dropped`,
  so what is analysed stays close to real time.

Memory is flat: nothing is kept per frame.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..errors import InvalidInput, MediaTooLarge, UnsupportedMedia

log = logging.getLogger(__name__)

VideoSource = str | Path | int
"""A video file path, or a webcam index (an ``int``, or a string of digits)."""

MAX_CONSECUTIVE_FAILURES = 25
"""Decode failures in a row after which a stream is taken to have ended."""
DEFAULT_FPS = 30.0
"""Frame rate assumed when a stream does not give a usable one."""


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the reader uses (tests pass fakes)."""

    def isOpened(self) -> bool: ...  # OpenCV's name
    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...
    def release(self) -> None: ...


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``index`` counts delivered frames from 0 (across loops), ``time_s`` is its
    presentation time in seconds, ``rgb`` the upright ``uint8 (H, W, 3)`` image."""

    index: int
    time_s: float
    rgb: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a source. ``width``/``height`` are those of the upright frames;
    ``fps``, ``frame_count`` and ``duration_s`` are None when unknown (webcams, some containers);
    ``rotation`` is the rotation metadata in degrees (0 when none)."""

    source: str
    width: int
    height: int
    fps: float | None
    frame_count: int | None
    duration_s: float | None
    rotation: int
    live: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def webcam_index(source: VideoSource) -> int | None:
    """The webcam index a source names (an int, or a string of digits), else None."""
    if isinstance(source, bool):
        raise InvalidInput("a video source must be a path or a webcam index, not a bool")
    if isinstance(source, int):
        return source
    if isinstance(source, str) and source.strip().isdigit():
        return int(source.strip())
    return None


def _open_capture(source: VideoSource) -> tuple[Capture, str, bool]:
    """(capture, display name, live) for a path or webcam index; raises UnsupportedMedia if unopenable."""
    index = webcam_index(source)
    if index is not None:
        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            raise UnsupportedMedia(f"cannot open webcam {index}: no such camera, or it is busy")
        return cap, f"webcam {index}", True
    if not isinstance(source, str | Path):
        raise InvalidInput(f"a video source must be a path or a webcam index, got {type(source).__name__}")
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise UnsupportedMedia(f"{name}: no such video file")
    if not path.is_file():
        raise UnsupportedMedia(f"{name}: not a file")
    if path.stat().st_size == 0:
        raise UnsupportedMedia(f"{name}: the file is empty (0 bytes)")
    cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise UnsupportedMedia(
            f"{name}: not a video OpenCV/FFmpeg can read (not a video, an unknown codec, or a truncated file)"
        )
    return cap, name, False


def _rotate(rgb: np.ndarray, degrees: int) -> np.ndarray:
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(rgb, codes[degrees]) if degrees in codes else rgb


class FrameReader:
    """Iterate over the frames of ``source`` (path or webcam index); see the module docstring.

    ``max_pixels`` refuses larger frames (:class:`~emolens.errors.MediaTooLarge`). ``capture``
    replaces the OpenCV capture (tests). Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        source: VideoSource,
        *,
        loop: int = 1,
        prefetch: int = 0,
        max_pixels: int | None = None,
        capture: Callable[[VideoSource], tuple[Capture, str, bool]] | None = None,
    ) -> None:
        if loop < 1 or prefetch < 0:
            raise InvalidInput(f"loop must be >= 1 and prefetch >= 0, got {loop} and {prefetch}")
        self._source, self._opener = source, capture or _open_capture
        self.loop, self.prefetch = loop, prefetch
        self.broken = 0
        self.dropped = 0
        self.delivered = 0
        self.truncated = 0
        self._cap, self.name, self.live = self._opener(source)
        self._rotation = 0
        try:
            first = self._first_frame()
        except BaseException:
            self._cap.release()
            raise
        h, w = self._to_rgb(first).shape[:2]
        if max_pixels is not None and h * w > max_pixels:
            self._cap.release()
            raise MediaTooLarge(f"{self.name}: frames of {w}x{h} exceed the limit of {max_pixels} pixels")
        self._first: np.ndarray | None = first
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not self.live else 0
        rate = fps if 0.0 < fps < 1000.0 else None
        frames = count if count > 0 else None
        duration = frames / rate if frames is not None and rate is not None else None
        self.info = VideoInfo(self.name, int(w), int(h), rate, frames, duration, self._rotation, self.live)
        self._interval = 1.0 / (rate or DEFAULT_FPS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ decoding

    def _first_frame(self) -> np.ndarray:
        cap = self._cap
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1.0)
        meta = round(float(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0.0)) % 360
        auto = bool(cap.get(cv2.CAP_PROP_ORIENTATION_AUTO))
        self._rotation = meta
        self._manual_rotation = 0 if auto else meta
        for _ in range(MAX_CONSECUTIVE_FAILURES):
            bgr = self._decode()
            if bgr is not None:
                return bgr
            if self.live:
                time.sleep(0.05)  # cameras often need a moment before the first frame
        raise UnsupportedMedia(f"{self.name}: the video has no frame that can be decoded")

    def _decode(self) -> np.ndarray | None:
        if not self._cap.grab():
            return None
        ok, bgr = self._cap.retrieve()
        return bgr if ok and bgr is not None and bgr.size else None

    def _to_rgb(self, bgr: np.ndarray) -> np.ndarray:
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        elif bgr.shape[2] == 4:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return _rotate(rgb, self._manual_rotation)

    def _stamp(self, prev: float | None, offset: float, t0_wall: float) -> float:
        """Time of the frame just decoded, forced above ``prev``."""
        if self.live:
            t = time.monotonic() - t0_wall
        else:
            ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            t = offset + ms / 1000.0 if ms is not None and np.isfinite(ms) and ms >= 0 else -1.0
        if prev is not None and t <= prev:
            t = prev + (1e-3 if self.live else self._interval)
        return max(t, 0.0)

    def _reopen(self) -> bool:
        self._cap.release()
        try:
            self._cap, _, _ = self._opener(self._source)
        except UnsupportedMedia:
            return False
        self._cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1.0)
        return True

    def _frames(self) -> Iterator[Frame]:
        """The decoding loop (runs in the caller's thread or in the prefetch thread)."""
        t0_wall = time.monotonic()
        prev: float | None = None
        offset = 0.0
        assert self._first is not None
        pending: np.ndarray | None = self._first
        self._first = None
        for pass_no in range(self.loop):
            if pass_no > 0:
                offset = (prev or 0.0) + self._interval
                if not self._reopen() or (pending := self._next_good()) is None:
                    return
            read_this_pass = 0
            while pending is not None and not self._stop.is_set():
                prev = self._stamp(prev, offset, t0_wall)
                yield Frame(self.delivered, prev, self._to_rgb(pending))
                self.delivered += 1
                read_this_pass += 1
                pending = self._next_good()
            if self._stop.is_set():
                return
            expected = self.info.frame_count
            if pass_no == 0 and expected is not None and read_this_pass < expected - 1:
                self.truncated = expected - read_this_pass
                log.warning("%s: stream ended after %d of %d frames (truncated?)", self.name, read_this_pass, expected)

    def _next_good(self) -> np.ndarray | None:
        """The next decodable frame (BGR), counting broken ones before it; None at the end."""
        failures = 0
        while not self._stop.is_set():
            bgr = self._decode()
            if bgr is not None:
                self.broken += failures
                return bgr
            failures += 1
            if failures >= (MAX_CONSECUTIVE_FAILURES if not self.live else 4 * MAX_CONSECUTIVE_FAILURES):
                return None
            if not self.live and self._at_end():
                return None
        return None

    def _at_end(self) -> bool:
        count = self.info.frame_count
        pos = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
        return count is None or pos is None or pos >= count

    # ------------------------------------------------------------ public

    def __iter__(self) -> Iterator[Frame]:
        if self.prefetch <= 0:
            return self._frames()
        return self._threaded()

    def _threaded(self) -> Iterator[Frame]:
        q: queue.Queue[Frame | BaseException | None] = queue.Queue(maxsize=self.prefetch)

        def put(item: Frame | BaseException | None) -> bool:
            drop = self.live and isinstance(item, Frame)
            while not self._stop.is_set():
                try:
                    if drop:
                        q.put_nowait(item)
                    else:
                        q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    if drop:
                        self._drop_oldest(q)
            return False

        def work() -> None:
            try:
                for frame in self._frames():
                    if not put(frame):
                        return
                put(None)
            except BaseException as e:  # handed to the consumer, raised there
                put(e)

        self._thread = threading.Thread(target=work, name="emolens-video-reader", daemon=True)
        self._thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def _drop_oldest(self, q: queue.Queue[Frame | BaseException | None]) -> None:
        """A camera does not wait: keep the newest frames, count the one dropped."""
        try:
            q.get_nowait()
            self.dropped += 1
        except queue.Empty:
            pass

    def close(self) -> None:
        """Stop decoding and release the source (safe to call twice)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
            self._thread = None
        self._cap.release()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_video(source: VideoSource) -> VideoInfo:
    """Open ``source``, decode its first frame and return its :class:`VideoInfo` (raises like :class:`FrameReader`)."""
    with FrameReader(source) as reader:
        return reader.info

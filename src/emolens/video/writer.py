"""The annotated MP4: each frame with its faces' boxes, track ids, labels and probability bars.

Drawing reuses :func:`emolens.inference.annotate.annotate` (colours shared with the still-image
output) and adds the track id under each box and the video time in the corner. With ``blur`` the
faces are first pixelated and blurred (:func:`blur_faces`), so the file can be shared without
showing who was filmed; labels are drawn on top. Frames are encoded as H.264 (libx264 through
PyAV, yuv420p, CRF 23, ``+faststart``), which every browser plays; odd frame sizes are padded by
one pixel, as yuv420p needs even ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InvalidInput
from ..inference.annotate import annotate, emotion_color
from ..results import FaceResult, FrameResult, ImageResult

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def blur_faces(rgb: np.ndarray, faces: Iterable[FaceResult], grow: float = 0.15, blocks: int = 6) -> np.ndarray:
    """A copy of ``rgb`` with every face box (grown by ``grow`` per side) pixelated to about
    ``blocks`` blocks across and then blurred: not reversible, unlike a light blur."""
    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]
    for face in faces:
        x, y, bw, bh = (int(v) for v in face.box)
        gx, gy = round(bw * grow), round(bh * grow)
        x0, y0, x1, y1 = max(0, x - gx), max(0, y - gy), min(w, x + bw + gx), min(h, y + bh + gy)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        roi = out[y0:y1, x0:x1]
        small = cv2.resize(roi, (max(1, blocks), max(1, round(blocks * roi.shape[0] / roi.shape[1]))),
                           interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_NEAREST)
        k = max(3, (min(roi.shape[:2]) // 4) | 1)
        out[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (k, k), 0)
    return out


def draw_frame(rgb: np.ndarray, frame: FrameResult, *, blur: bool = False) -> np.ndarray:
    """The annotated RGB copy of one video frame (see the module docstring)."""
    base = blur_faces(rgb, frame.faces) if blur else rgb
    img = annotate(base, ImageResult("", frame.width, frame.height, frame.faces), draw_keypoints=not blur)
    h, w = img.shape[:2]
    scale = max(min(h, w) / 720.0, 0.35)
    thick = max(1, round(1.5 * scale))
    for face in frame.faces:
        if face.track_id is None:
            continue
        x, y, _, bh = (int(v) for v in face.box)
        text = f"#{face.track_id}"
        (tw, th), base_line = cv2.getTextSize(text, _FONT, scale, thick)
        tx, ty = min(max(0, x), max(0, w - tw - 4)), min(h - 2, y + bh + th + 4)
        cv2.rectangle(img, (tx, ty - th - 3), (tx + tw + 4, ty + base_line), emotion_color(face.emotion), -1)
        cv2.putText(img, text, (tx + 2, ty), _FONT, scale, (0, 0, 0), thick, cv2.LINE_AA)
    stamp = f"{frame.time_s:7.2f} s" + ("" if frame.classified else "  (tracked)")
    cv2.putText(img, stamp, (6, max(12, round(22 * scale))), _FONT, scale, (255, 255, 255), thick + 1, cv2.LINE_AA)
    cv2.putText(img, stamp, (6, max(12, round(22 * scale))), _FONT, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return img


class H264Sink:
    """An H.264 MP4 file written frame by frame with PyAV's libx264 encoder."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], crf: int = 23) -> None:
        import av

        self.size = size
        self.even = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        try:
            self._container: Any = av.open(str(path), mode="w", options={"movflags": "+faststart"})
            self._stream: Any = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        except (av.FFmpegError, OSError, ValueError) as e:
            raise InvalidInput(f"cannot write the annotated video {path} (H.264 at {size[0]}x{size[1]}): {e}") from e
        self._stream.width, self._stream.height = self.even
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._pts = 0

    def write(self, rgb: np.ndarray) -> None:
        import av

        if (rgb.shape[1], rgb.shape[0]) != self.even:
            rgb = cv2.copyMakeBorder(rgb, 0, self.even[1] - rgb.shape[0], 0, self.even[0] - rgb.shape[1],
                                     cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._pts
        self._pts += 1
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


class AnnotatedVideoWriter:
    """Writes annotated frames to an MP4. ``fps`` None: taken from the first two timestamps (the
    first frame waits for the second). Frames of another size than the first are resized."""

    def __init__(self, path: Path, *, fps: float | None = None, blur: bool = False) -> None:
        self.path, self.fps, self.blur = Path(path), fps, blur
        self._writer: H264Sink | None = None
        self._size: tuple[int, int] | None = None
        self._held: tuple[np.ndarray, FrameResult] | None = None
        self.frames = 0

    def _open(self, fps: float, size: tuple[int, int]) -> None:
        self._writer, self._size = H264Sink(self.path, fps, size), size

    def write(self, rgb: np.ndarray, frame: FrameResult) -> None:
        """Annotate and append one frame."""
        if self._writer is None:
            if self.fps is None and self._held is None:
                self._held = (np.array(rgb, copy=True), frame)
                return
            fps = self.fps
            if fps is None:
                assert self._held is not None
                dt = frame.time_s - self._held[1].time_s
                fps = 1.0 / dt if 1e-3 < dt < 10 else 30.0
            self._open(min(max(fps, 1.0), 240.0), (rgb.shape[1], rgb.shape[0]))
            if self._held is not None:
                self._put(*self._held)
                self._held = None
        self._put(rgb, frame)

    def _put(self, rgb: np.ndarray, frame: FrameResult) -> None:
        assert self._writer is not None and self._size is not None
        img = draw_frame(rgb, frame, blur=self.blur)
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(img)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when no frame was written."""
        if self._writer is None and self._held is not None:
            self._open(self.fps or 30.0, (self._held[0].shape[1], self._held[0].shape[0]))
            self._put(*self._held)
            self._held = None
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        return self.path

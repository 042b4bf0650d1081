"""Files of a campaign analysis: tables (CSV + Parquet), ``summary.json`` and key-moment thumbnails.

See ``docs/campaigns.md`` for every file and column. Floats that are undefined (NaN) are written
as empty CSV cells and as ``null`` in JSON.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from .. import fsio
from ..fsio import atomic_path

log = logging.getLogger(__name__)

THUMB_WIDTH = 320
"""Width in pixels of the key-moment thumbnails (height keeps the aspect ratio)."""
STRIP_WIDTH = 120
"""Width in pixels of the filmstrip frames."""
STRIP_FRAMES = 8
"""At most this many filmstrip frames per ad."""

FILES = {
    "summary_json": "summary.json",
    "series_csv": "series.csv",
    "series_parquet": "series.parquet",
    "viewer_seconds_csv": "viewer_seconds.csv",
    "viewer_seconds_parquet": "viewer_seconds.parquet",
    "timeline_csv": "timeline.csv",
    "timeline_parquet": "timeline.parquet",
    "kpis_csv": "kpis.csv",
    "qc_csv": "qc.csv",
    "report_html": "report.html",
    "thumbs_dir": "thumbs",
}


def safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``-``, ``_``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "ad"


def write_table(df: pd.DataFrame, out_dir: Path, stem: str, parquet: bool = True) -> None:
    """``stem.csv`` (and ``stem.parquet``) in ``out_dir``, each written whole or not at all
    (:mod:`emolens.fsio`; a full disk is an ``OutputError`` naming the file)."""
    with atomic_path(out_dir / f"{stem}.csv") as tmp:
        df.to_csv(tmp, index=False)
    if parquet:
        with atomic_path(out_dir / f"{stem}.parquet") as tmp:
            df.to_parquet(tmp, index=False)


def jsonable(obj: Any) -> Any:
    """Plain JSON types: NaN/inf -> None, numpy scalars -> Python, Paths -> str."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_summary(summary: Mapping[str, Any], out_dir: Path) -> Path:
    path = out_dir / FILES["summary_json"]
    fsio.write_text(path, json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n")
    return path


def ad_frame(video: Path, second: int) -> np.ndarray | None:
    """The RGB frame of an ad video at the middle of ``second`` (the last frame when the video is
    shorter), or None when the video cannot be read."""
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if fps > 0 and count > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, min(count - 1, int((second + 0.5) * fps)))
        ok, bgr = cap.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None
    finally:
        cap.release()


def write_thumbnail(video: Path, second: int, out_dir: Path, ad: str, width: int = THUMB_WIDTH,
                    prefix: str = "") -> str | None:
    """Writes ``thumbs/<prefix><ad>_<second>.jpg`` (``width`` pixels wide) and returns its path
    relative to ``out_dir``; None (with a warning) when the frame cannot be read."""
    rgb = ad_frame(video, second)
    if rgb is None:
        log.warning("%s: no frame at %d s for a thumbnail", video, second)
        return None
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    rel = f"{FILES['thumbs_dir']}/{prefix}{safe_name(ad)}_{second}.jpg"
    try:
        (out_dir / FILES["thumbs_dir"]).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise fsio.output_error(out_dir / FILES["thumbs_dir"], err) from err
    with atomic_path(out_dir / rel) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]):
            raise fsio.OutputError(f"cannot write the thumbnail {out_dir / rel}")
    return rel


def filmstrip_seconds(duration_s: float, frames: int = STRIP_FRAMES) -> list[int]:
    """The ad seconds shown in the filmstrip: evenly spread over the ad, first and last included,
    at most ``frames`` and at most one per second."""
    last = max(0, math.ceil(duration_s - 1e-9) - 1)
    if last + 1 <= frames:
        return list(range(last + 1))
    return sorted({round(i * last / (frames - 1)) for i in range(frames)})


def write_filmstrip(video: Path, duration_s: float, out_dir: Path, ad: str) -> list[dict[str, Any]]:
    """The filmstrip frames of an ad (``thumbs/strip_<ad>_<second>.jpg``, :data:`STRIP_WIDTH` wide):
    ``[{"second", "thumbnail"}]``, frames that cannot be read left out."""
    out = []
    for s in filmstrip_seconds(duration_s):
        rel = write_thumbnail(video, s, out_dir, ad, width=STRIP_WIDTH, prefix="strip_")
        if rel is not None:
            out.append({"second": s, "thumbnail": rel})
    return out

"""A small demo campaign cut from the real media in ``../shared/data/media`` (see its README.md).

:func:`build_demo` writes two "ads" (short cuts of two of the clips, so key moments get real
thumbnails) and, for each ad, "viewer recordings" made from the face clips with OpenCV: a segment of
a clip, looped or played back and forth, sometimes resized, that starts 0.5-2 s before the ad (the
``offset_s`` of the manifest). Two recordings are meant to fail quality control for a real reason:
one shows only dogs (no face) and one is darkened below the brightness limit. One ad also has a
photo test: a folder of face photos per viewer. Everything goes to ``out_dir`` (about 5 MB, built in
a few seconds): ``ads/``, ``recordings/`` and ``manifest.yaml`` (format: ``docs/campaigns.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..errors import DatasetError, InvalidInput

log = logging.getLogger(__name__)

FPS = 10.0
"""Frame rate of every demo video (the campaign analysis samples 5 frames per second)."""
TAIL_S = 0.5
"""Seconds a recording runs on after the ad ends."""
DARK_GAIN = 0.15
"""Brightness factor of the darkened recording (the clip's mean gray of ~100 drops below 40)."""

HAMILTON = "face_recognition_short_hamilton_clip.mp4"
GATES = "youtubefaces_0492_03_009_bill_gates.avi"
WOMAN = "fer_woman2.mp4"
PHONE = "fer_test.mp4"
ANGER_1 = "huimiang_1543684773_anger.avi"
ANGER_2 = "huimiang_1543684810_anger.avi"
DOGS = "dlib_dogs.jpg"


@dataclass(frozen=True)
class AdCut:
    """An ad: ``duration_s`` seconds of ``source`` from ``start_s``, ``width`` pixels wide, brightness
    scaled by ``gain``."""

    name: str
    source: str
    start_s: float
    duration_s: float
    width: int
    gain: float = 1.0


@dataclass(frozen=True)
class ViewerCut:
    """A viewer recording: ``source`` (a video, or a photo panned over) from ``start_s``, ``lead_s``
    seconds before the ad, looped (``mode="loop"``) or played back and forth (``"pingpong"``),
    resized to ``width`` (None: as is) and scaled in brightness by ``gain``."""

    viewer: str
    ad: str
    source: str
    lead_s: float
    start_s: float = 0.0
    mode: str = "loop"
    width: int | None = None
    gain: float = 1.0
    attributes: dict[str, str] = field(default_factory=dict)


# ad_a: the stage clip, brightened (stage lighting is dark); ad_b: the interview.
ADS = (AdCut("ad_a", HAMILTON, 0.0, 8.0, 480, gain=1.8), AdCut("ad_b", GATES, 0.5, 7.0, 320))
YOUNG, OLDER = "18-34", "35-54"
_V1, _V2 = {"segment": YOUNG, "region": "north"}, {"segment": YOUNG, "region": "south"}
_V3, _V4 = {"segment": OLDER, "region": "north"}, {"segment": OLDER, "region": "south"}
_V5, _V6 = {"segment": OLDER, "region": "north"}, {"segment": YOUNG, "region": "south"}
# One person per viewer id across both ads; v05's ad_b recording is too dark (lights off) and v06
# is a dog in front of the camera (no face): quality control must exclude both.
VIEWERS = (
    ViewerCut("v01", "ad_a", WOMAN, 1.0, attributes=_V1),
    ViewerCut("v01", "ad_b", WOMAN, 0.8, start_s=7.0, attributes=_V1),
    ViewerCut("v02", "ad_a", PHONE, 0.5, mode="pingpong", attributes=_V2),
    ViewerCut("v02", "ad_b", PHONE, 1.2, start_s=1.0, mode="pingpong", width=400, attributes=_V2),
    ViewerCut("v03", "ad_a", ANGER_1, 1.5, mode="pingpong", width=480, attributes=_V3),
    ViewerCut("v03", "ad_b", ANGER_1, 0.6, start_s=0.3, mode="pingpong", width=400, attributes=_V3),
    ViewerCut("v04", "ad_a", ANGER_2, 0.7, mode="pingpong", width=480, attributes=_V4),
    ViewerCut("v04", "ad_b", ANGER_2, 1.6, start_s=0.5, mode="pingpong", width=560, attributes=_V4),
    ViewerCut("v05", "ad_a", GATES, 2.0, attributes=_V5),
    ViewerCut("v05", "ad_b", GATES, 1.0, start_s=1.0, gain=DARK_GAIN, attributes=_V5),
    ViewerCut("v06", "ad_a", DOGS, 1.0, attributes=_V6),
)
PHOTO_TESTS = (
    ("p01", "ad_b", ("fer_justin.jpg", "dlib_Tom_Cruise_avp_2014_4.jpg", "wujie_angry_man.jpg"),
     {"segment": YOUNG, "region": "south"}),
    ("p02", "ad_b", ("wujie_crying_woman.jpg", "dlib_2008_001009.jpg", "face_recognition_two_people.jpg"),
     {"segment": OLDER, "region": "north"}),
)
PHOTO_MAX_SIDE = 480


def _needed() -> tuple[set[str], set[str]]:
    """(video names, photo names) the demo reads."""
    videos = {a.source for a in ADS} | {v.source for v in VIEWERS if v.source != DOGS}
    photos = {DOGS} | {name for _, _, names, _ in PHOTO_TESTS for name in names}
    return videos, photos


def check_media(media_dir: Path) -> tuple[Path, Path]:
    """(videos folder, photos folder) of ``media_dir``; :class:`DatasetError` naming every missing
    folder or file and where it looked."""
    media_dir = Path(media_dir)
    if not media_dir.is_dir():
        raise DatasetError(f"demo media folder not found: {media_dir} (expected ../shared/data/media with "
                           f"videos/ and photos/; see its README.md)")
    videos, photos = _needed()
    missing = [str(media_dir / "videos" / n) for n in sorted(videos) if not (media_dir / "videos" / n).is_file()]
    missing += [str(media_dir / "photos" / n) for n in sorted(photos) if not (media_dir / "photos" / n).is_file()]
    if missing:
        raise DatasetError(f"demo media missing in {media_dir}: {len(missing)} file(s): {', '.join(missing)}")
    return media_dir / "videos", media_dir / "photos"


def read_frames(path: Path, fps: float = FPS) -> list[np.ndarray]:
    """The BGR frames of a video resampled to ``fps`` (each output time gets the frame showing then);
    DatasetError when the file cannot be decoded."""
    cap = cv2.VideoCapture(str(path))
    try:
        src_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not cap.isOpened() or not 0 < src_fps < 1000:
            raise DatasetError(f"cannot decode the demo video {path}")
        frames: list[np.ndarray] = []
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            while len(frames) / fps < (index + 1) / src_fps - 1e-9:  # output times this frame covers
                frames.append(frame)
            index += 1
    finally:
        cap.release()
    if not frames:
        raise DatasetError(f"the demo video {path} has no frame")
    return frames


def _even(img: np.ndarray, width: int | None) -> np.ndarray:
    """``img`` resized to ``width`` (keeping the aspect) and cropped to even sides (for mp4v)."""
    if width is not None and width != img.shape[1]:
        height = round(img.shape[0] * width / img.shape[1])
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    return img[: h - h % 2, : w - w % 2]


def _pick(n: int, start: int, count: int, mode: str) -> list[int]:
    """``count`` frame indices from ``start`` in a clip of ``n`` frames, looping or back and forth."""
    span = max(1, n - start)
    if mode == "pingpong" and span > 1:
        period = 2 * (span - 1)
        return [start + (k if (k := i % period) < span else period - k) for i in range(count)]
    return [start + i % span for i in range(count)]


def pan_frames(photo: np.ndarray, count: int, size: tuple[int, int] = (480, 360)) -> list[np.ndarray]:
    """``count`` frames of a slow diagonal pan over ``photo`` (a still shown as a video)."""
    w, h = size
    ph, pw = photo.shape[:2]
    if pw < w or ph < h:
        photo = cv2.resize(photo, (max(w, pw), max(h, ph)))
        ph, pw = photo.shape[:2]
    steps = max(1, count - 1)
    return [photo[round((ph - h) * i / steps): round((ph - h) * i / steps) + h,
                  round((pw - w) * i / steps): round((pw - w) * i / steps) + w] for i in range(count)]


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = FPS) -> None:
    """Writes BGR frames (all of the first frame's size) as an mp4v MP4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise InvalidInput(f"cannot write the demo video {path} (OpenCV mp4v writer did not open)")
    try:
        for frame in frames:
            frame = frame if frame.shape[:2] == (h, w) else cv2.resize(frame, (w, h))
            writer.write(np.ascontiguousarray(frame))  # a strided view crashes some OpenCV builds
    finally:
        writer.release()


class _Sources:
    """Decoded source clips (each read once) and photos."""

    def __init__(self, videos: Path, photos: Path) -> None:
        self.videos, self.photos = videos, photos
        self._cache: dict[str, list[np.ndarray]] = {}

    def clip(self, name: str) -> list[np.ndarray]:
        if name not in self._cache:
            self._cache[name] = read_frames(self.videos / name)
        return self._cache[name]

    def photo(self, name: str) -> np.ndarray:
        img = cv2.imread(str(self.photos / name), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"cannot decode the demo photo {self.photos / name}")
        return img


def _ad_video(src: _Sources, ad: AdCut) -> list[np.ndarray]:
    frames = src.clip(ad.source)
    count = round(ad.duration_s * FPS)
    picked = [_even(frames[i], ad.width) for i in _pick(len(frames), round(ad.start_s * FPS), count, "loop")]
    return [cv2.convertScaleAbs(f, alpha=ad.gain) for f in picked] if ad.gain != 1.0 else picked


def _recording(src: _Sources, cut: ViewerCut, ad: AdCut) -> list[np.ndarray]:
    count = round((cut.lead_s + ad.duration_s + TAIL_S) * FPS)
    if cut.source == DOGS:
        frames = pan_frames(src.photo(DOGS), count)
    else:
        clip = src.clip(cut.source)
        frames = [clip[i] for i in _pick(len(clip), min(round(cut.start_s * FPS), len(clip) - 1), count, cut.mode)]
    frames = [_even(f, cut.width) for f in frames]
    if cut.gain != 1.0:
        frames = [cv2.convertScaleAbs(f, alpha=cut.gain) for f in frames]
    return frames


def _photo_folder(src: _Sources, folder: Path, names: Sequence[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        img = src.photo(name)
        scale = min(1.0, PHOTO_MAX_SIDE / max(img.shape[:2]))
        if scale < 1.0:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / Path(name).with_suffix(".jpg").name), img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def build_demo(media_dir: Path, out_dir: Path) -> Path:
    """Builds the demo campaign from ``media_dir`` (``../shared/data/media``) into ``out_dir`` and
    returns the path of ``out_dir/manifest.yaml``.

    Raises :class:`~emolens.errors.DatasetError` naming every missing folder or file of
    ``media_dir`` (and where it looked), or a source that cannot be decoded. Existing demo files in
    ``out_dir`` are overwritten; nothing else there is touched.
    """
    videos, photos = check_media(Path(media_dir))
    out_dir = Path(out_dir)
    src = _Sources(videos, photos)
    ads = {ad.name: ad for ad in ADS}
    ad_rows, rec_rows = [], []
    for ad in ADS:
        write_video(out_dir / "ads" / f"{ad.name}.mp4", _ad_video(src, ad))
        ad_rows.append({"name": ad.name, "duration_s": ad.duration_s, "video": f"ads/{ad.name}.mp4"})
    for cut in VIEWERS:
        rel = f"recordings/{cut.viewer}_{cut.ad}.mp4"
        write_video(out_dir / rel, _recording(src, cut, ads[cut.ad]))
        rec_rows.append({"viewer": cut.viewer, "ad": cut.ad, "recording": rel, "offset_s": cut.lead_s,
                         "attributes": dict(cut.attributes)})
    for viewer, ad_name, names, attributes in PHOTO_TESTS:
        rel = f"recordings/{viewer}_{ad_name}_photos"
        _photo_folder(src, out_dir / rel, names)
        rec_rows.append({"viewer": viewer, "ad": ad_name, "recording": rel, "attributes": dict(attributes)})
    manifest = out_dir / "manifest.yaml"
    header = ("# emolens demo campaign, generated by emolens.campaign.demo.build_demo from the shared media.\n"
              "# v05/ad_b (darkened) and v06 (a dog: no face) are meant to be excluded by quality control.\n")
    body = {"campaign": "emolens demo: two ads", "ads": ad_rows, "recordings": rec_rows}
    manifest.write_text(header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
    log.info("demo campaign written to %s (%d recordings)", out_dir, len(rec_rows))
    return manifest

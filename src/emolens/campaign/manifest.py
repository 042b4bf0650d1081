"""The campaign manifest: the ads and the viewer recordings a marketer lists by hand, in YAML or CSV.

:func:`load_manifest` reads and checks a manifest and returns a frozen :class:`Manifest`. Every
problem found is reported at once in one :class:`ManifestError` whose message names the manifest
file and the line of each problem (missing file, unknown ad, duplicate viewer for one ad, offset
beyond the recording, ...). Paths in the manifest are relative to the manifest's folder.
The format is documented in ``docs/campaigns.md``.
"""

from __future__ import annotations

import csv
import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import yaml

from .. import safeyaml
from ..errors import InvalidInput

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""Extensions counted as photos (a recording folder holds photos with these)."""

AD_KEYS = ("name", "duration_s", "video")
RECORDING_KEYS = ("viewer", "ad", "recording", "offset_s", "attributes")
CSV_COLUMNS = ("viewer", "ad", "recording", "offset_s", "ad_duration_s", "ad_video")
TOP_KEYS = ("campaign", "ads", "recordings")
MIN_AD_DURATION_S = 1.0
"""Shortest ad (seconds): the analysis works per ad second, so a shorter ad has no curve at all."""
MAX_AD_DURATION_S = 3600.0
"""Longest ad (seconds). Per-second tables grow with it, so it bounds a campaign's memory."""
AD_VIDEO_SLACK_S = 1.0
"""An ad may be declared this much longer than its own video (rounding of frame counts)."""
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
"""Largest manifest file read."""
MAX_RECORDINGS = 5000
"""Recordings one manifest may list."""
MAX_VIEWER_SECONDS = 300_000
"""Sum over the video recordings of their ad's seconds: the rows of the per-viewer, per-second
tables, which the analysis holds in memory at once (measured: about 1 KB each)."""
MAX_ADS = 100
"""Ads one manifest may describe."""
MAX_TOTAL_AD_SECONDS = 14_400
"""Sum of the ads' seconds: every ad second costs its curves, intervals and report points."""
MAX_BOOTSTRAP_AD_SECONDS = 16_000_000
"""Bootstrap resamples times ad seconds: the per-second intervals hold one resample matrix per ad
(measured: about 23 bytes per cell, so at most about 370 MB)."""
MAX_ATTRIBUTES = 32
"""Attributes (segment, age group, ...) one recording may carry."""
MAX_TEXT = 200
"""Characters of a viewer id, an ad name, an attribute name or value."""
MAX_PATH_CHARS = 4096
"""Characters of a path in a manifest (and 255 bytes per folder or file name)."""
_ALIASES = {"viewer_id": "viewer", "offset": "offset_s", "duration": "duration_s", "path": "recording",
            "file": "recording"}


class ManifestError(InvalidInput):
    """A manifest that cannot be used. ``problems`` holds one ``"line N: ..."`` text per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path, self.problems = Path(path), list(problems)
        head = f"{path}: {len(problems)} problem(s) in the campaign manifest"
        super().__init__(head + ("" if not problems else ":\n  " + "\n  ".join(problems)))


@dataclass(frozen=True)
class Ad:
    """One ad: its name, its duration in seconds and, optionally, the ad's own video (for thumbnails)."""

    name: str
    duration_s: float
    video: Path | None = None
    line: int = 0

    @property
    def seconds(self) -> int:
        """Number of ad seconds: ``ceil(duration_s)``."""
        return math.ceil(self.duration_s - 1e-9)


@dataclass(frozen=True)
class Recording:
    """One viewer watching one ad: a video file (``kind="video"``) or photos (a folder or one image).

    ``offset_s`` is the time in the recording at which the ad started (ignored for photos);
    ``attributes`` holds the viewer's attributes (``segment``, ``age_group``, ...) as strings.
    ``line`` is the manifest line that declared it."""

    viewer: str
    ad: str
    path: Path
    kind: Literal["video", "photos"]
    offset_s: float = 0.0
    attributes: Mapping[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def key(self) -> str:
        return f"{self.viewer} / {self.ad}"


@dataclass(frozen=True)
class Manifest:
    """A checked campaign: ads in manifest order, recordings in manifest order."""

    path: Path
    name: str
    ads: tuple[Ad, ...]
    recordings: tuple[Recording, ...]

    def ad(self, name: str) -> Ad:
        for ad in self.ads:
            if ad.name == name:
                return ad
        raise KeyError(name)

    @property
    def attributes(self) -> tuple[str, ...]:
        """Attribute names used by any recording, in order of first use."""
        seen: dict[str, None] = {}
        for rec in self.recordings:
            seen.update(dict.fromkeys(rec.attributes))
        return tuple(seen)


def photo_files(folder: Path) -> list[Path]:
    """The photos of a folder (sorted by name; not recursive; FIFOs, devices and sockets left out)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message never echoes a huge value back."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def path_problem(text: str) -> str | None:
    """Why ``text`` cannot be a path (NUL or other control character, too long), or None."""
    if any(ord(c) < 32 for c in text):
        return "holds a NUL or another control character"
    if len(text) > MAX_PATH_CHARS or any(len(part.encode("utf-8", "replace")) > 255 for part in text.split("/")):
        return f"is too long (at most {MAX_PATH_CHARS} characters, 255 bytes per name)"
    return None


def video_duration(path: Path) -> float | None:
    """Duration in seconds from the container's frame count and frame rate (None when unknown)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        return count / fps if 0 < fps < 1000 and count > 0 else None
    finally:
        cap.release()


# ------------------------------------------------------------------ reading


class _LineDict(dict[str, Any]):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(safeyaml.BoundedLoader):
    pass


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_LineDict]:
    data = _LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    yield data
    data.update({str(k): v for k, v in loader.construct_mapping(node).items()})


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


class _Checker:
    """Collects problems with their line numbers while the manifest is parsed."""

    def __init__(self, path: Path) -> None:
        self.path, self.root = path, path.parent
        self.problems: list[str] = []
        self.pairs: dict[tuple[str, str], int] = {}  # (viewer, ad) -> first line

    def add(self, line: int, text: str) -> None:
        self.problems.append(f"line {line}: {text}" if line else text)

    def keys(self, line: int, keys: Mapping[str, Any], known: tuple[str, ...], what: str) -> None:
        for key in keys:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.add(line, f"unknown key {key!r} in {what}{hint}; known: {', '.join(known)}")

    def number(self, line: int, value: Any, what: str) -> float | None:
        """A finite number of seconds (``true``/``false`` are not numbers), else a problem and None."""
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise TypeError
            out = float(value)
        except (TypeError, ValueError, OverflowError):
            self.add(line, f"{what} must be a number of seconds, got {shown(value)}")
            return None
        if not math.isfinite(out):
            self.add(line, f"{what} must be a finite number, got {shown(value)}")
            return None
        return out

    def text(self, line: int, value: Any, what: str) -> str:
        """A short single-line text (a number is taken as its text), else a problem and ""."""
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add(line, f"{what} must be a text, got {shown(value)}")
            return ""
        out = str(value).strip()
        if len(out) > MAX_TEXT or any(ord(c) < 32 for c in out):
            self.add(line, f"{what} must be at most {MAX_TEXT} characters on one line, got {shown(out)}")
            return ""
        return out

    def file(self, line: int, value: Any, what: str) -> Path | None:
        if value is None or (isinstance(value, str) and value.strip() == ""):
            self.add(line, f"{what} is missing")
            return None
        if not isinstance(value, str):
            self.add(line, f"{what} must be a path, got {shown(value)}")
            return None
        why = path_problem(value)
        if why is not None:
            self.add(line, f"{what} {shown(value)} {why}")
            return None
        p = Path(value).expanduser()
        p = p if p.is_absolute() else self.root / p
        try:
            found = p.exists()
        except (OSError, ValueError) as err:  # a name the OS refuses (too long once joined, ...)
            self.add(line, f"{what} {shown(value)} cannot be used as a path ({err})")
            return None
        if not found:
            self.add(line, f"{what} not found: {p}")
            return None
        if not (p.is_file() or p.is_dir()):  # a FIFO or a device would block whoever opens it
            self.add(line, f"{what} {p} is not a regular file or folder")
            return None
        return p


def _normalise(d: Mapping[str, Any]) -> dict[str, Any]:
    return {_ALIASES.get(str(k), str(k)): v for k, v in d.items()}


def _parse_ad(chk: _Checker, d: Mapping[str, Any], line: int) -> Ad | None:
    chk.keys(line, d, AD_KEYS, "an ad")
    name = chk.text(line, d.get("name"), "the name of an ad")
    if not name:
        chk.add(line, "an ad needs a name")
    duration = chk.number(line, d.get("duration_s"), f"duration_s of ad {name!r}")
    if duration is not None and not MIN_AD_DURATION_S <= duration <= MAX_AD_DURATION_S:
        chk.add(line, f"duration_s of ad {name!r} must be between {MIN_AD_DURATION_S:g} and "
                f"{MAX_AD_DURATION_S:g} seconds, got {duration:g}")
        duration = None
    video = chk.file(line, d.get("video"), f"video of ad {name!r}") if d.get("video") else None
    if video is not None and duration is not None and video.is_file():
        length = video_duration(video)
        if length is not None and duration > length + AD_VIDEO_SLACK_S:
            chk.add(line, f"duration_s of ad {name!r} is {duration:g} s but its video {video.name} lasts "
                    f"{length:.2f} s")
            duration = None
    if not name or duration is None:
        return None
    return Ad(name, duration, video, line)


def _attributes(chk: _Checker, line: int, d: Mapping[str, Any], extra_ok: bool) -> dict[str, str]:
    """``attributes:`` mapping plus (CSV, or YAML keys that are not a typo of a known key) extra keys."""
    attrs: dict[str, str] = {}
    given = d.get("attributes")
    if given is not None:
        if not isinstance(given, Mapping):
            chk.add(line, f"attributes must be a mapping such as {{segment: young}}, got {shown(given)}")
        else:
            for k, v in given.items():
                attrs[chk.text(line, k, "an attribute name") or "?"] = chk.text(line, v, f"attribute {shown(k)}")
    known = (*RECORDING_KEYS, *CSV_COLUMNS)
    for key, value in d.items():
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close or not extra_ok or isinstance(value, Mapping | list):
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            chk.add(line, f"unknown key {key!r} in a recording{hint}")
            continue
        attrs[chk.text(line, key, "an attribute name") or "?"] = chk.text(line, value, f"attribute {shown(key)}")
    if len(attrs) > MAX_ATTRIBUTES:
        chk.add(line, f"a recording may carry at most {MAX_ATTRIBUTES} attributes, got {len(attrs)}")
    return attrs


def _parse_recording(chk: _Checker, d: Mapping[str, Any], line: int, ads: Mapping[str, Ad]) -> Recording | None:
    viewer, ad = chk.text(line, d.get("viewer"), "the viewer id"), chk.text(line, d.get("ad"), "the ad")
    if not viewer:
        chk.add(line, "a recording needs a viewer id")
    if not ad:
        chk.add(line, f"recording of viewer {viewer!r} names no ad")
    elif ad not in ads:
        close = difflib.get_close_matches(ad, list(ads), n=1)
        chk.add(line, f"unknown ad {ad!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; ads: {', '.join(ads) or 'none'}")
    if viewer and ad:
        first = chk.pairs.setdefault((viewer, ad), line)
        if first != line:
            chk.add(line, f"viewer {viewer!r} already has a recording for ad {ad!r} (line {first})")
    attrs = _attributes(chk, line, d, extra_ok=True)
    raw = d.get("offset_s")
    offset = 0.0 if raw is None or (isinstance(raw, str) and raw.strip() == "") else chk.number(line, raw, "offset_s")
    if offset is not None and offset < 0:
        chk.add(line, f"offset_s must be >= 0, got {offset:g}")
        offset = None
    path = chk.file(line, d.get("recording"), f"recording of viewer {viewer!r}")
    if path is None or offset is None or not viewer or ad not in ads:
        return None
    kind: Literal["video", "photos"] = "photos" if path.is_dir() or path.suffix.lower() in IMAGE_EXTS else "video"
    try:
        empty = path.is_dir() and not photo_files(path)
    except OSError as err:
        chk.add(line, f"photo folder {path} cannot be read ({err.strerror or err})")
        return None
    if empty:
        chk.add(line, f"photo folder {path} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        return None
    if kind == "video":
        duration = video_duration(path)
        if duration is not None and offset >= duration:
            chk.add(line, f"offset_s {offset:g} is beyond the end of {path.name} ({duration:.2f} s long)")
            return None
    return Recording(viewer, ad, path, kind, float(offset), attrs, line)


def _from_yaml(chk: _Checker, text: str) -> tuple[str | None, list[Ad], list[Recording]]:
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        chk.add(line, f"not valid YAML: {getattr(err, 'problem', None) or err}")
        return None, [], []
    if not isinstance(data, _LineDict):
        chk.add(0, "the manifest must be a mapping with 'ads' and 'recordings' lists")
        return None, [], []
    chk.keys(data.line, data, TOP_KEYS, "the manifest")
    ads: dict[str, Ad] = {}
    for item in _items(chk, data, "ads"):
        ad = _parse_ad(chk, _normalise(item), item.line)
        if ad is not None and ad.name in ads:
            chk.add(item.line, f"duplicate ad name {ad.name!r} (first on line {ads[ad.name].line})")
        elif ad is not None:
            ads[ad.name] = ad
    recs = [r for item in _items(chk, data, "recordings")
            if (r := _parse_recording(chk, _normalise(item), item.line, ads)) is not None]
    name = chk.text(data.key_lines.get("campaign", data.line), data.get("campaign"), "the campaign name")
    return name or None, list(ads.values()), recs


def _items(chk: _Checker, data: _LineDict, key: str) -> list[_LineDict]:
    value = data.get(key)
    line = data.key_lines.get(key, data.line)
    if value is None:
        chk.add(line, f"the manifest has no {key!r} list")
        return []
    if not isinstance(value, list):
        chk.add(line, f"{key!r} must be a list")
        return []
    if key == "recordings" and len(value) > MAX_RECORDINGS:
        chk.add(line, f"a manifest may list at most {MAX_RECORDINGS} recordings, this one lists {len(value)}")
        return []
    good = [v for v in value if isinstance(v, _LineDict)]
    if len(good) != len(value):
        chk.add(line, f"every item of {key!r} must be a mapping (key: value)")
    return good


def _from_csv(chk: _Checker, text: str) -> tuple[str | None, list[Ad], list[Recording]]:
    try:
        return _read_csv(chk, text)
    except csv.Error as err:  # a field over csv's size limit, a NUL byte, ...
        chk.add(0, f"not a valid CSV file: {err}")
        return None, [], []


def _read_csv(chk: _Checker, text: str) -> tuple[str | None, list[Ad], list[Recording]]:
    reader = csv.DictReader(text.splitlines())
    header = [_ALIASES.get(h.strip(), h.strip()) for h in reader.fieldnames or []]
    for col in ("viewer", "ad", "recording", "ad_duration_s"):
        if col not in header:
            chk.add(1, f"missing column {col!r} (columns: {', '.join(header) or 'none'})")
    if chk.problems:
        return None, [], []
    reader.fieldnames = header
    rows = []
    for i, row in enumerate(reader):
        if i >= MAX_RECORDINGS:
            chk.add(i + 2, f"a manifest may list at most {MAX_RECORDINGS} recordings")
            return None, [], []
        rows.append((i + 2, {k: v.strip() if isinstance(v, str) else "" for k, v in row.items() if k is not None}))
    ads: dict[str, Ad] = {}
    for line, row in rows:
        name = row.get("ad", "")
        if not name:
            continue
        ad = _parse_ad(chk, {"name": name, "duration_s": row.get("ad_duration_s"),
                             "video": row.get("ad_video") or None}, line)
        if ad is None:
            continue
        seen = ads.setdefault(name, ad)
        if seen.duration_s != ad.duration_s or seen.video != ad.video:
            chk.add(line, f"ad {name!r} is described differently on line {seen.line} (duration or video)")
    recs = [r for line, row in rows if (r := _parse_recording(chk, row, line, ads)) is not None]
    return None, list(ads.values()), recs


def _check_size(chk: _Checker, ads: list[Ad], recs: list[Recording]) -> None:
    """The campaign's size limits (ads, ad seconds, viewer-seconds): memory grows with each."""
    seconds = {ad.name: ad.seconds for ad in ads}
    if len(ads) > MAX_ADS:
        chk.add(0, f"the manifest describes {len(ads)} ads; the limit is {MAX_ADS} (split the campaign)")
    if sum(seconds.values()) > MAX_TOTAL_AD_SECONDS:
        chk.add(0, f"the ads add up to {sum(seconds.values())} s; the limit is {MAX_TOTAL_AD_SECONDS} s "
                "(split the campaign)")
    total = sum(seconds.get(r.ad, 0) for r in recs if r.kind == "video")
    if total > MAX_VIEWER_SECONDS:
        chk.add(0, f"the recordings add up to {total} viewer-seconds of ads; the limit is {MAX_VIEWER_SECONDS} "
                "(split the campaign)")


def check_budget(manifest: Manifest, bootstrap: int) -> None:
    """:class:`InvalidInput` when ``bootstrap`` resamples over the manifest's ad seconds pass
    :data:`MAX_BOOTSTRAP_AD_SECONDS` (the analysis would hold too large resample matrices)."""
    ad_seconds = sum(ad.seconds for ad in manifest.ads)
    if bootstrap * ad_seconds > MAX_BOOTSTRAP_AD_SECONDS:
        most = MAX_BOOTSTRAP_AD_SECONDS // max(1, ad_seconds)
        raise InvalidInput(f"bootstrap {bootstrap} over {ad_seconds} ad seconds passes the memory budget of "
                           f"{MAX_BOOTSTRAP_AD_SECONDS} resample-seconds: use bootstrap <= {most} or fewer ads")


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a campaign manifest (``.yaml``/``.yml`` or ``.csv``; see ``docs/campaigns.md``).

    Raises :class:`ManifestError` listing every problem with its line: unreadable file, unknown
    keys or columns, missing files, unknown ad, duplicate ad names, duplicate (viewer, ad),
    negative offset or one at or beyond the recording's end, duration <= 0, a photo folder without
    images, an empty campaign.
    """
    path = Path(path)
    chk = _Checker(path)
    why = path_problem(str(path))
    if why is not None:
        raise ManifestError(shown(str(path)), [f"the manifest path {why}"])
    try:
        is_file = path.is_file()
    except OSError as err:
        raise ManifestError(path, [f"the manifest path cannot be used ({err.strerror or err})"]) from None
    if not is_file:
        gone = not (path.exists() or path.is_symlink())
        raise ManifestError(path, ["the manifest file does not exist" if gone
                                   else "the manifest is not a regular file"])
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(path, [f"the manifest is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MB"])
        with path.open("rb") as fh:  # at most the limit, even from a file that lies about its size
            text = fh.read(MAX_MANIFEST_BYTES + 1).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(path, [f"cannot read the manifest: {err}"]) from None
    if len(text) > MAX_MANIFEST_BYTES:
        raise ManifestError(path, [f"the manifest is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MB"])
    if path.suffix.lower() == ".csv":
        name, ads, recs = _from_csv(chk, text)
    elif path.suffix.lower() in (".yaml", ".yml"):
        name, ads, recs = _from_yaml(chk, text)
    else:
        raise ManifestError(path, [f"unknown manifest type {path.suffix!r}: use .yaml, .yml or .csv"])
    if not chk.problems and not recs:
        chk.add(0, "the campaign is empty: no recordings")
    _check_size(chk, ads, recs)
    if chk.problems:
        raise ManifestError(path, chk.problems)
    return Manifest(path, name or path.stem, tuple(ads), tuple(recs))

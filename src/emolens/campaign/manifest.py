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

from ..errors import InvalidInput

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""Extensions counted as photos (a recording folder holds photos with these)."""

AD_KEYS = ("name", "duration_s", "video")
RECORDING_KEYS = ("viewer", "ad", "recording", "offset_s", "attributes")
CSV_COLUMNS = ("viewer", "ad", "recording", "offset_s", "ad_duration_s", "ad_video")
TOP_KEYS = ("campaign", "ads", "recordings")
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
    """The photos of a folder (sorted by name; not recursive)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


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


class _LineLoader(yaml.SafeLoader):
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
        try:
            out = float(value)
        except (TypeError, ValueError):
            self.add(line, f"{what} must be a number of seconds, got {value!r}")
            return None
        if not math.isfinite(out):
            self.add(line, f"{what} must be a finite number, got {value!r}")
            return None
        return out

    def file(self, line: int, value: Any, what: str) -> Path | None:
        if value is None or str(value).strip() == "":
            self.add(line, f"{what} is missing")
            return None
        p = Path(str(value)).expanduser()
        p = p if p.is_absolute() else self.root / p
        if not p.exists():
            self.add(line, f"{what} not found: {p}")
            return None
        return p


def _normalise(d: Mapping[str, Any]) -> dict[str, Any]:
    return {_ALIASES.get(str(k), str(k)): v for k, v in d.items()}


def _parse_ad(chk: _Checker, d: Mapping[str, Any], line: int) -> Ad | None:
    chk.keys(line, d, AD_KEYS, "an ad")
    name = str(d.get("name") or "").strip()
    if not name:
        chk.add(line, "an ad needs a name")
    duration = chk.number(line, d.get("duration_s"), f"duration_s of ad {name!r}")
    if duration is not None and duration <= 0:
        chk.add(line, f"duration_s of ad {name!r} must be > 0, got {duration:g}")
        duration = None
    video = chk.file(line, d.get("video"), f"video of ad {name!r}") if d.get("video") else None
    if not name or duration is None:
        return None
    return Ad(name, duration, video, line)


def _attributes(chk: _Checker, line: int, d: Mapping[str, Any], extra_ok: bool) -> dict[str, str]:
    """``attributes:`` mapping plus (CSV, or YAML keys that are not a typo of a known key) extra keys."""
    attrs: dict[str, str] = {}
    given = d.get("attributes")
    if given is not None:
        if not isinstance(given, Mapping):
            chk.add(line, f"attributes must be a mapping such as {{segment: young}}, got {given!r}")
        else:
            attrs.update({str(k): "" if v is None else str(v) for k, v in given.items()})
    known = (*RECORDING_KEYS, *CSV_COLUMNS)
    for key, value in d.items():
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close or not extra_ok or isinstance(value, Mapping | list):
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            chk.add(line, f"unknown key {key!r} in a recording{hint}")
            continue
        attrs[key] = "" if value is None else str(value).strip()
    return attrs


def _parse_recording(chk: _Checker, d: Mapping[str, Any], line: int, ads: Mapping[str, Ad]) -> Recording | None:
    viewer, ad = str(d.get("viewer") or "").strip(), str(d.get("ad") or "").strip()
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
    offset = 0.0 if raw is None or str(raw).strip() == "" else chk.number(line, raw, "offset_s")
    if offset is not None and offset < 0:
        chk.add(line, f"offset_s must be >= 0, got {offset:g}")
        offset = None
    path = chk.file(line, d.get("recording"), f"recording of viewer {viewer!r}")
    if path is None or offset is None or not viewer or ad not in ads:
        return None
    kind: Literal["video", "photos"] = "photos" if path.is_dir() or path.suffix.lower() in IMAGE_EXTS else "video"
    if path.is_dir() and not photo_files(path):
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
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: safe
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
    name = data.get("campaign")
    return (None if name is None else str(name)), list(ads.values()), recs


def _items(chk: _Checker, data: _LineDict, key: str) -> list[_LineDict]:
    value = data.get(key)
    line = data.key_lines.get(key, data.line)
    if value is None:
        chk.add(line, f"the manifest has no {key!r} list")
        return []
    if not isinstance(value, list):
        chk.add(line, f"{key!r} must be a list")
        return []
    good = [v for v in value if isinstance(v, _LineDict)]
    if len(good) != len(value):
        chk.add(line, f"every item of {key!r} must be a mapping (key: value)")
    return good


def _from_csv(chk: _Checker, text: str) -> tuple[str | None, list[Ad], list[Recording]]:
    reader = csv.DictReader(text.splitlines())
    header = [_ALIASES.get(h.strip(), h.strip()) for h in reader.fieldnames or []]
    for col in ("viewer", "ad", "recording", "ad_duration_s"):
        if col not in header:
            chk.add(1, f"missing column {col!r} (columns: {', '.join(header) or 'none'})")
    if chk.problems:
        return None, [], []
    reader.fieldnames = header
    rows = [(i + 2, {k: (v or "").strip() for k, v in row.items() if k is not None}) for i, row in enumerate(reader)]
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


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a campaign manifest (``.yaml``/``.yml`` or ``.csv``; see ``docs/campaigns.md``).

    Raises :class:`ManifestError` listing every problem with its line: unreadable file, unknown
    keys or columns, missing files, unknown ad, duplicate ad names, duplicate (viewer, ad),
    negative offset or one at or beyond the recording's end, duration <= 0, a photo folder without
    images, an empty campaign.
    """
    path = Path(path)
    chk = _Checker(path)
    if not path.is_file():
        raise ManifestError(path, ["the manifest file does not exist"])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(path, [f"cannot read the manifest: {err}"]) from None
    if path.suffix.lower() == ".csv":
        name, ads, recs = _from_csv(chk, text)
    elif path.suffix.lower() in (".yaml", ".yml"):
        name, ads, recs = _from_yaml(chk, text)
    else:
        raise ManifestError(path, [f"unknown manifest type {path.suffix!r}: use .yaml, .yml or .csv"])
    if not chk.problems and not recs:
        chk.add(0, "the campaign is empty: no recordings")
    if chk.problems:
        raise ManifestError(path, chk.problems)
    return Manifest(path, name or path.stem, tuple(ads), tuple(recs))

"""Decode any still image a caller hands us into one upright RGB ``uint8`` array.

:func:`load_image` accepts a path, the encoded bytes of a file, or an array. Files are decoded with
Pillow, EXIF orientation applied, and every mode Pillow knows (gray, gray+alpha, palette, RGBA,
CMYK, 16-bit, 32-bit int, float) mapped to ``(H, W, 3)`` RGB ``uint8``; alpha is composited over
white; animated images give their first frame. Limits are checked before any pixel is decoded
(file size, then the pixel count in the header), and the whole image is decoded at once so a
truncated file is refused rather than returned half grey.

A JPEG is also checked for damage the decoder papers over (:func:`jpeg_damage`: bytes that are not
valid entropy-coded data, restart markers out of order, no end marker, data after it, and, where
PyAV is installed, Huffman data that FFmpeg's strict decoder refuses): it is still decoded, with a
warning logged and kept in :attr:`LoadedImage.warnings`. Only a path to a regular file
is opened (a FIFO or a device would block the reader).

Errors: :class:`~emolens.errors.InvalidInput` (missing file, wrong argument type or array shape),
:class:`~emolens.errors.UnsupportedMedia` (empty, not an image, corrupt or truncated) and
:class:`~emolens.errors.MediaTooLarge` (over ``max_bytes`` or ``max_pixels``).
"""

from __future__ import annotations

import io
import logging
import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import InvalidInput, MediaTooLarge, UnsupportedMedia

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50_000_000
DEFAULT_MAX_PIXELS = 50_000_000

ImageSource = str | Path | bytes | bytearray | memoryview | np.ndarray


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``rgb`` is upright ``uint8 (H, W, 3)``; ``source`` names where it came from."""

    rgb: np.ndarray
    source: str
    warnings: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def load_image(
    src: ImageSource,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> LoadedImage:
    """Decode ``src`` into an upright RGB ``uint8`` image.

    ``src`` may be a path, encoded file bytes, or an array. Arrays are taken to be **RGB** (not
    OpenCV's BGR): ``uint8`` or ``uint16`` (scaled to 8 bits), shaped ``(H, W)``, ``(H, W, 1)``,
    ``(H, W, 3)`` or ``(H, W, 4)`` (RGBA). ``name`` overrides the ``source`` recorded in the result
    (default: the path, ``"<bytes>"`` or ``"<array>"``).
    """
    if isinstance(src, np.ndarray):
        source = name or "<array>"
        return LoadedImage(array_to_rgb(src, max_pixels=max_pixels, source=source), source)
    if isinstance(src, str | Path):
        source = name or _short(str(src))
        data = _read_file(Path(src), max_bytes)
    elif isinstance(src, bytes | bytearray | memoryview):
        source = name or "<bytes>"
        data = bytes(src)
        if len(data) > max_bytes:
            raise MediaTooLarge(f"{source}: {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    else:
        raise InvalidInput(
            f"cannot read an image from a {type(src).__name__}; pass a path, bytes or a numpy array"
        )
    rgb = decode_bytes(data, source=source, max_pixels=max_pixels)
    damage = jpeg_damage(data)
    if damage is None:
        return LoadedImage(rgb, source)
    warning = f"{source}: damaged JPEG data ({damage}); the image may be partly wrong"
    log.warning("%s", warning)
    return LoadedImage(rgb, source, (warning,))


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte: not a usable path
        raise InvalidInput(f"not a usable file name: {_short(str(path))!r} ({e})") from e
    if not exists:
        raise InvalidInput(f"file not found: {_short(str(path))}")
    if is_dir:
        raise InvalidInput(f"{path} is a directory, not an image file")
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a device: opening it could block forever
            raise UnsupportedMedia(f"{path} is not a regular file (a FIFO, a device or a socket)")
        size = st.st_size
        if size > max_bytes:
            raise MediaTooLarge(f"{path}: {size} bytes exceeds the limit of {max_bytes} bytes")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks, even if it was swapped
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)  # a growing file can lie about its size
    except OSError as e:
        raise UnsupportedMedia(f"cannot read {path}: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise MediaTooLarge(f"{path}: more than {max_bytes} bytes (the limit)")
    return data


def decode_bytes(data: bytes, *, source: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Encoded image bytes -> upright RGB ``uint8 (H, W, 3)``; see :func:`load_image` for errors."""
    if not data:
        raise UnsupportedMedia(f"{source} is empty (0 bytes)")
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global someone else flipped: truncation would pass silently
        log.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images will not be detected")
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
        _check_pixels(img.size, max_pixels, source)
        img.seek(0)  # first frame of an animation
        img.load()  # full decode now: truncation raises here
        return _pil_to_rgb(_upright(img, source))
    except (MediaTooLarge, UnsupportedMedia):
        raise
    except Image.DecompressionBombError as e:
        raise MediaTooLarge(f"{source}: {e}") from e
    except UnidentifiedImageError as e:
        raise UnsupportedMedia(
            f"{source} is not an image in a format we can decode (JPEG, PNG, GIF, BMP, TIFF, WebP ...)"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError) as e:
        raise UnsupportedMedia(f"{source} is corrupt or truncated: {e}") from e
    except MemoryError as e:
        raise MediaTooLarge(f"{source}: not enough memory to decode it") from e
    except Exception as e:  # a decoder plugin failing in its own way on a malformed file
        log.debug("decoder failure on %s", source, exc_info=True)
        raise UnsupportedMedia(f"{source} could not be decoded ({type(e).__name__}: {e})") from e


_RST = range(0xD0, 0xD8)
_STANDALONE = {0x01, *_RST, 0xD8, 0xD9}  # markers without a length field


def jpeg_damage(data: bytes) -> str | None:
    """What is wrong with the structure of JPEG ``data`` (None when it is sound or not a JPEG).

    Walks the marker segments and, inside each scan, the entropy-coded bytes: a 0xFF there must be
    stuffing (0xFF00), a restart marker in sequence, or the marker that ends the scan; the file must
    end with EOI and hold nothing after it but padding. Damage that keeps this structure (garbage
    without any 0xFF byte) is found by decoding every Huffman code: FFmpeg's MJPEG decoder with
    ``err_detect=explode`` (PyAV; skipped when it is not installed)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    return _jpeg_structure(data) or _ffmpeg_refuses(data)


def _ffmpeg_refuses(data: bytes) -> str | None:
    """Why FFmpeg's strict JPEG decoder refuses ``data`` (None when it decodes, or without PyAV)."""
    try:
        import av
    except ImportError:
        return None
    ctx = av.CodecContext.create("mjpeg", "r")
    ctx.options = {"err_detect": "explode", "lowres": "3"}  # every Huffman code, little IDCT work
    try:
        ctx.decode(av.Packet(data))
    except av.error.FFmpegError:
        return "the compressed image data does not decode cleanly"
    return None


def _jpeg_structure(data: bytes) -> str | None:
    """What is wrong with the marker structure of JPEG ``data`` (see :func:`jpeg_damage`)."""
    i, n = 2, len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            return f"bytes that are not a marker at offset {i}"
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            rest = data[i + 2:]
            return None if not rest.strip(b"\x00\xff\r\n ") else f"{len(rest)} bytes after the end marker"
        if marker in _STANDALONE:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2 or i + 4 > n:
            return f"a segment with a bad length at offset {i}"
        i += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            i, problem = _scan_end(data, i)
            if problem is not None:
                return problem
    return "no end marker (EOI)"


def _scan_end(data: bytes, i: int) -> tuple[int, str | None]:
    """Offset of the marker that ends the scan starting at ``i``, and what is wrong inside the scan."""
    expected = 0
    while True:
        j = data.find(b"\xff", i)
        if j < 0 or j + 1 >= len(data):
            return len(data), "the data ends inside a scan"
        nxt = data[j + 1]
        if nxt == 0x00 or nxt == 0xFF:
            i = j + 2 if nxt == 0x00 else j + 1
        elif nxt in _RST:
            if nxt - 0xD0 != expected:
                return j, f"restart marker {nxt - 0xD0} where {expected} was due, at offset {j}"
            expected = (expected + 1) % 8
            i = j + 2
        elif nxt == 0xD9 or 0xC0 <= nxt <= 0xFE:
            return j, None
        else:
            return j, f"an invalid marker 0xFF{nxt:02X} inside the image data at offset {j}"


def _check_pixels(size: tuple[int, int], max_pixels: int, source: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise UnsupportedMedia(f"{source} declares an empty image ({w}x{h})")
    if w * h > max_pixels:
        raise MediaTooLarge(f"{source}: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels")


def _upright(img: Image.Image, source: str) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block leaves the image as stored (logged)."""
    try:
        out = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error) as e:
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", source, e)
        return img
    return out if out is not None else img


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return gray_to_rgb(_scale_to_uint8(np.asarray(img), mode))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _over_white(np.asarray(img.convert("RGBA")))
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))  # L, 1, P, CMYK, YCbCr, LAB ...


def _scale_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """16-bit and 32-bit gray to 8 bits by scaling the full range, never by clipping."""
    if mode.startswith("I;16"):
        return _u16_to_u8(a.astype(np.uint16, copy=False))
    x = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(x.min()), float(x.max())
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        return np.round(x * 255.0).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0 and mode == "F":
        return np.round(x).astype(np.uint8)
    if mode == "I" and lo >= 0.0 and hi <= 65535.0:  # 16-bit data that Pillow widened to 32 bits
        return _u16_to_u8(x.astype(np.uint16))
    span = hi - lo if hi > lo else 1.0
    return np.round((x - lo) * (255.0 / span)).astype(np.uint8)


def _u16_to_u8(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _over_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """``(H, W)`` -> ``(H, W, 3)`` by repeating the channel."""
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def array_to_rgb(a: np.ndarray, *, max_pixels: int = DEFAULT_MAX_PIXELS, source: str = "<array>") -> np.ndarray:
    """An RGB(A)/gray ``uint8``/``uint16`` array -> RGB ``uint8 (H, W, 3)`` (a copy; see :func:`load_image`)."""
    if a.dtype not in (np.uint8, np.uint16):
        raise InvalidInput(f"{source}: image arrays must be uint8 or uint16, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InvalidInput(f"{source}: cannot use an array of shape {a.shape}; expected (H, W), (H, W, 1|3|4)")
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise InvalidInput(f"{source}: the image array is empty ({w}x{h})")
    if h * w > max_pixels:
        raise MediaTooLarge(f"{source}: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels")
    if a.dtype == np.uint16:
        a = _u16_to_u8(a)
    if a.ndim == 2:
        return gray_to_rgb(a)
    if a.shape[2] == 4:
        return _over_white(a)
    return np.ascontiguousarray(a, dtype=np.uint8).copy()

"""A corpus of awkward and hostile image files, generated in memory, with the outcome each must have.

Every :class:`Case` holds the file ``name`` (its extension is what a user would see), the encoded
``data``, and either ``error`` (the :mod:`emolens.errors` class a reader must raise) or ``size``
(the upright (width, height) it must decode to). The CLI and API tests reuse :func:`corpus`::

    from tests.inference.badinputs import corpus
    for case in corpus():
        ...

Everything is made with Pillow, NumPy and zlib; nothing is read from disk.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from emolens.errors import EmolensError, MediaTooLarge, UnsupportedMedia


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    error: type[EmolensError] | None = None
    size: tuple[int, int] | None = None  # (width, height) after EXIF rotation, when it decodes
    note: str = ""


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def noise_rgb(w: int = 64, h: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth-ish colour image that compresses like a photo (truncation then really cuts data)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def jpeg(w: int = 64, h: int = 48) -> bytes:
    return _encode(Image.fromarray(noise_rgb(w, h)), "JPEG", quality=90)


def truncated_jpeg() -> bytes:
    """A JPEG cut at 60 % of its length (no EOI marker, most of the scan missing)."""
    data = jpeg(128, 96)
    return data[: int(len(data) * 0.6)]


def truncated_png() -> bytes:
    data = _encode(Image.fromarray(noise_rgb(128, 96)), "PNG")
    return data[: int(len(data) * 0.6)]


def corrupt_png() -> bytes:
    """A PNG whose compressed pixel data is overwritten with garbage (the header is intact)."""
    data = bytearray(_encode(Image.fromarray(noise_rgb(128, 96)), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 2 : start + 200] = bytes(range(198))
    return bytes(data)


def zero_bytes() -> bytes:
    return b""


def text_as_image() -> bytes:
    return b"Hello! This is a text file that someone named photo.jpg.\n" * 3


def html_as_png() -> bytes:
    return b"\x89PNG\r\n\x1a\n<html><body>not really a PNG</body></html>"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_only(w: int, h: int) -> bytes:
    """A PNG that declares ``w`` x ``h`` gray pixels but carries almost no data: the header must be
    refused by its pixel count before anything is decoded."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def decompression_bomb_png(w: int = 9000, h: int = 9000) -> bytes:
    """A complete, valid all-black gray PNG of ``w`` x ``h`` that is tiny on disk (~80 kB for 81 Mpx)."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)  # filter byte + pixels
    parts = [comp.compress(row) for _ in range(h)]
    idat = b"".join(parts) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def rgba_png() -> bytes:
    """40x30 RGBA: the left half opaque red, the right half fully transparent (decodes to white)."""
    a = np.zeros((30, 40, 4), np.uint8)
    a[:, :20] = (255, 0, 0, 255)
    a[:, 20:] = (0, 0, 255, 0)
    return _encode(Image.fromarray(a, "RGBA"), "PNG")


def gray_alpha_png() -> bytes:
    a = np.zeros((30, 40, 2), np.uint8)
    a[..., 0] = 100
    a[..., 1] = 255
    return _encode(Image.fromarray(a, "LA"), "PNG")


def palette_png() -> bytes:
    img = Image.fromarray(noise_rgb(40, 30)).convert("P", palette=Image.ADAPTIVE, colors=16)
    return _encode(img, "PNG")


def gray16_png() -> bytes:
    """64x16 16-bit gray ramp 0..65535 (left to right): must scale to 0..255, not clip."""
    ramp = np.linspace(0, 65535, 64).round().astype(np.uint16)
    return _encode(Image.fromarray(np.tile(ramp, (16, 1))), "PNG")


def float_tiff() -> bytes:
    """32x16 float image with values in [0, 1] (mode F)."""
    ramp = np.linspace(0.0, 1.0, 32, dtype=np.float32)
    return _encode(Image.fromarray(np.tile(ramp, (16, 1)), "F"), "TIFF")


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG of a solid orange-ish colour (RGB 230, 120, 30)."""
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:] = (230, 120, 30)
    return _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)


def animated_gif() -> bytes:
    """Three 40x30 frames: red, green, blue. The first frame (red) is the one to use."""
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg(rgb: np.ndarray | None = None, orientation: int = 6) -> bytes:
    """A JPEG stored sideways with an EXIF orientation tag, so that honouring the tag gives ``rgb``
    back upright (default: a 64x48 test image; orientation 6 = "rotate 90 degrees clockwise")."""
    upright = Image.fromarray(noise_rgb(64, 48) if rgb is None else rgb)
    stored = {3: upright.transpose(Image.ROTATE_180), 6: upright.transpose(Image.ROTATE_90),
              8: upright.transpose(Image.ROTATE_270)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def corpus() -> list[Case]:
    """Every case, with the outcome a reader with default limits (50 MB, 50 Mpx) must give."""
    return [
        Case("ok.jpg", jpeg(), size=(64, 48)),
        Case("zero_bytes.jpg", zero_bytes(), UnsupportedMedia, note="empty file"),
        Case("text.jpg", text_as_image(), UnsupportedMedia, note="text posing as a JPEG"),
        Case("html.png", html_as_png(), UnsupportedMedia, note="PNG signature, then HTML"),
        Case("truncated.jpg", truncated_jpeg(), UnsupportedMedia, note="JPEG cut at 60 %"),
        Case("truncated.png", truncated_png(), UnsupportedMedia, note="PNG cut at 60 %"),
        Case("corrupt.png", corrupt_png(), UnsupportedMedia, note="garbage in the pixel data"),
        Case("bomb.png", decompression_bomb_png(), MediaTooLarge, note="81 Mpx of zeros in ~80 kB"),
        Case("header_20000.png", png_header_only(20000, 20000), MediaTooLarge, note="400 Mpx header"),
        Case("header_8000.png", png_header_only(8000, 8000), MediaTooLarge,
             note="64 Mpx: under Pillow's own bomb limit, over emolens' 50 Mpx"),
        Case("rgba.png", rgba_png(), size=(40, 30)),
        Case("gray_alpha.png", gray_alpha_png(), size=(40, 30)),
        Case("palette.png", palette_png(), size=(40, 30)),
        Case("gray16.png", gray16_png(), size=(64, 16)),
        Case("float.tif", float_tiff(), size=(32, 16)),
        Case("cmyk.jpg", cmyk_jpeg(), size=(48, 32)),
        Case("animated.gif", animated_gif(), size=(40, 30)),
        Case("exif_rotated.jpg", exif_rotated_jpeg(), size=(64, 48), note="stored 48x64, EXIF orientation 6"),
    ]

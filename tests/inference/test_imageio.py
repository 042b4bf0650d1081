import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolens.errors import InvalidInput, MediaTooLarge, UnsupportedMedia
from emolens.inference.imageio import array_to_rgb, load_image

from . import badinputs as bad


@pytest.mark.parametrize("case", bad.corpus(), ids=lambda c: c.name)
def test_corpus_outcomes(case: bad.Case) -> None:
    if case.error is not None:
        with pytest.raises(case.error) as info:
            load_image(case.data, name=case.name)
        assert case.name in str(info.value)  # the message names the input
        return
    img = load_image(case.data, name=case.name)
    assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
    assert (img.width, img.height) == case.size
    assert img.source == case.name


def test_corpus_from_files(tmp_path: Path) -> None:
    for case in bad.corpus():
        path = tmp_path / case.name
        path.write_bytes(case.data)
        if case.error is None:
            assert load_image(path).source == str(path)
        else:
            with pytest.raises(case.error, match=case.name):
                load_image(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"not found.*nope\.jpg"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InvalidInput, match="directory"):
        load_image(tmp_path)


def test_unusable_path_strings() -> None:
    with pytest.raises(InvalidInput, match=r"not a usable file name|not found"):
        load_image("x" * 5000 + ".jpg")
    with pytest.raises(InvalidInput):
        load_image("bad\x00name.jpg")


def test_decoder_surprises_become_unsupported_media(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kw: object) -> None:
        raise ZeroDivisionError("plugin bug")

    monkeypatch.setattr(Image, "open", explode)
    with pytest.raises(UnsupportedMedia, match="ZeroDivisionError"):
        load_image(bad.jpeg(), name="odd.jpg")


def test_byte_limit_checked_for_files_and_bytes(tmp_path: Path) -> None:
    data = bad.jpeg()
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    with pytest.raises(MediaTooLarge, match=f"limit of {len(data) - 1} bytes"):
        load_image(path, max_bytes=len(data) - 1)
    with pytest.raises(MediaTooLarge):
        load_image(data, max_bytes=len(data) - 1)
    assert load_image(data, max_bytes=len(data)).width == 64


def test_pixel_limit_is_checked_on_the_header() -> None:
    with pytest.raises(MediaTooLarge, match="64x48"):
        load_image(bad.jpeg(), max_pixels=64 * 48 - 1)
    # the header-only file has almost no pixel data: refused by its declared size, not by decoding
    with pytest.raises(MediaTooLarge, match="8000x8000"):
        load_image(bad.png_header_only(8000, 8000))
    # beyond Pillow's own decompression-bomb limit: its error is translated too
    with pytest.raises(MediaTooLarge, match="400000000 pixels"):
        load_image(bad.png_header_only(20000, 20000), max_pixels=10**12)


def test_rgba_composited_over_white() -> None:
    rgb = load_image(bad.rgba_png()).rgb
    assert tuple(rgb[10, 5]) == (255, 0, 0)
    assert tuple(rgb[10, 35]) == (255, 255, 255)


def test_16bit_png_scaled_not_clipped() -> None:
    row = load_image(bad.gray16_png()).rgb[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)
    assert abs(row[32] - round(65535 * 32 / 63 / 257)) <= 1  # mid ramp stays mid grey
    assert len(np.unique(row)) > 50  # a ramp, not a step at 255


def test_float_image_scaled() -> None:
    row = load_image(bad.float_tiff()).rgb[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and abs(row[16] - 132) <= 1


def test_cmyk_jpeg_colours() -> None:
    rgb = load_image(bad.cmyk_jpeg()).rgb
    assert np.abs(rgb[16, 24].astype(int) - (230, 120, 30)).max() <= 12


def test_animated_gif_first_frame() -> None:
    rgb = load_image(bad.animated_gif()).rgb
    assert tuple(rgb[15, 20]) == (255, 0, 0)


def test_palette_and_gray_alpha() -> None:
    la = load_image(bad.gray_alpha_png()).rgb
    assert tuple(la[0, 0]) == (100, 100, 100)
    p = load_image(bad.palette_png()).rgb
    assert p.shape == (30, 40, 3) and p.std() > 5


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied(orientation: int) -> None:
    upright = bad.noise_rgb(64, 48).astype(int)
    rgb = load_image(bad.exif_rotated_jpeg(upright.astype(np.uint8), orientation)).rgb.astype(int)
    assert rgb.shape == upright.shape
    baseline = np.abs(load_image(bad._encode(Image.fromarray(upright.astype(np.uint8)), "JPEG", quality=95)).rgb
                      - upright).mean()  # what JPEG alone loses
    assert np.abs(rgb - upright).mean() <= 1.5 * baseline + 1
    assert np.abs(rgb - upright[::-1, ::-1]).mean() > 5 * baseline  # not left upside down


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_is_ignored() -> None:
    buf = io.BytesIO()
    Image.fromarray(bad.noise_rgb()).save(buf, "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f")
    assert load_image(buf.getvalue()).rgb.shape == (48, 64, 3)


def test_arrays() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = load_image(gray).rgb
    assert out.shape == (3, 4, 3) and np.array_equal(out[..., 1], gray)
    assert load_image(gray[..., None], name="g").source == "g"
    u16 = np.array([[0, 257, 65535]], dtype=np.uint16)
    assert load_image(u16).rgb[0, :, 0].tolist() == [0, 1, 255]
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert load_image(rgba).rgb.max() == 255  # transparent -> white
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    out = load_image(rgb).rgb
    assert np.array_equal(out, rgb) and out is not rgb


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((4, 4), np.float32), "uint8 or uint16"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_bad_arrays(array: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        array_to_rgb(array)


def test_array_pixel_limit() -> None:
    with pytest.raises(MediaTooLarge):
        load_image(np.zeros((10, 10), np.uint8), max_pixels=99)


def test_wrong_argument_type() -> None:
    with pytest.raises(InvalidInput, match="int"):
        load_image(42)  # type: ignore[arg-type]


def test_unsupported_message_for_text_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("hello")
    with pytest.raises(UnsupportedMedia, match=r"notes\.jpg"):
        load_image(p)


def test_real_photos_decode(shared_data: Path) -> None:
    photos = shared_data / "media" / "photos"
    for p in sorted(photos.glob("*.jpg")):
        img = load_image(p)
        assert img.rgb.dtype == np.uint8 and img.rgb.shape[2] == 3 and min(img.rgb.shape[:2]) > 100
    assert load_image(photos / "dlib_Tom_Cruise_avp_2014_4.jpg").rgb.shape[:2] == (800, 565)

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from emolens.config import DataConfig
from emolens.data import cache as cache_mod
from emolens.data import fer2013, load_dataset
from emolens.data.fer2013 import parse_pixels, read_fer2013_table
from emolens.errors import DatasetError
from emolens.labels import FER7
from emolens.preprocess import prepare_uint8

HEADER = "emotion,pixels,Usage"
USAGES = ("Training", "PublicTest", "PrivateTest")


def fer_line(label: int, img: np.ndarray, usage: str = "Training") -> str:
    return f"{label},{' '.join(map(str, img.ravel().tolist()))},{usage}"


def make_rows(rng: np.random.Generator, per_split=(14, 7, 7)) -> list[tuple[int, np.ndarray, str]]:
    rows = []
    for usage, n in zip(USAGES, per_split, strict=True):
        rows += [(i % 7, rng.integers(0, 256, (48, 48), dtype=np.uint8), usage) for i in range(n)]
    return rows


def write_csv(
    path: Path, lines: list[str], header: str = HEADER, gz: bool = False, newline: str = "\n"
) -> Path:
    text = newline.join([header, *lines]) + newline
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, newline="")
    return path


def write_rows(path: Path, rows, gz: bool = False) -> Path:
    return write_csv(path, [fer_line(*r) for r in rows], gz=gz)


@pytest.fixture(autouse=True)
def _tmp_cache(request, tmp_path, monkeypatch):
    """Generated data caches into a temporary folder; real-data tests use the default cache."""
    if "shared_data" not in request.fixturenames:
        monkeypatch.setenv("EMOLENS_CACHE", str(tmp_path / "cache"))


def _cfg(path: Path, **kw) -> DataConfig:
    return DataConfig(dataset="fer2013", path=str(path), **kw)


@pytest.mark.parametrize("gz", [False, True])
def test_load_plain_and_gz(tmp_path, rng, gz):
    rows = make_rows(rng)
    path = write_rows(tmp_path / ("f.csv.gz" if gz else "f.csv"), rows, gz=gz)
    ds = load_dataset(_cfg(path))
    assert ds.labels == FER7 and ds.skipped == {}
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 14, "val": 7, "test": 7}
    train = ds.split("Training")
    assert train.images.dtype == np.uint8 and train.images.shape == (14, 48, 48)
    assert train.labels.dtype == np.int64 and train.labels.tolist() == [i % 7 for i in range(14)]
    assert np.array_equal(train.images[3], rows[3][1])
    assert np.array_equal(ds.split("test").images[0], rows[21][1])
    assert ds.split("val").sources[0] == f"{path.name}:row 14"
    assert train.targets is None


def test_gzip_detected_by_content_not_name(tmp_path, rng):
    path = write_rows(tmp_path / "named-plain.csv", make_rows(rng), gz=True)
    assert len(load_dataset(_cfg(path)).split("train")) == 14


def test_crlf_quotes_blank_lines_and_loose_spacing(tmp_path, rng):
    rows = make_rows(rng, (3, 1, 1))
    lines = [fer_line(*r) for r in rows]
    lines[0] = lines[0].replace(" ", "  ", 5)  # double spaces
    label, px, usage = lines[1].split(",")
    lines[1] = f'{label},"{px} ",{usage}'  # quoted, trailing space
    lines[2] = lines[2].replace(" ", "\t", 3)
    lines.insert(3, "")
    path = write_csv(tmp_path / "f.csv", lines, newline="\r\n")
    ds = load_dataset(_cfg(path))
    assert [np.array_equal(ds.split("train").images[i], rows[i][1]) for i in range(3)] == [True] * 3
    assert ds.split("val").sources == ("f.csv:row 3",)  # the blank line is not a row


def test_no_usage_column_is_all_train_then_split(tmp_path, rng):
    rows = make_rows(rng, (70, 0, 0))
    path = write_csv(
        tmp_path / "train.csv",
        [f"{lab},{' '.join(map(str, im.ravel()))}" for lab, im, _ in rows],
        header="emotion,pixels",
    )
    ds = load_dataset(_cfg(path, val_fraction=0.2), seed=3)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 42, "val": 14, "test": 14}
    assert np.bincount(ds.split("val").labels).tolist() == [2] * 7


def _bad_file(tmp_path: Path, rng, bad_line: str) -> Path:
    rows = make_rows(rng, (4, 2, 2))
    lines = [fer_line(*r) for r in rows]
    lines.insert(2, bad_line)  # data row 2, file line 4
    return write_csv(tmp_path / "bad.csv", lines)


def _good_pixels(rng) -> list[str]:
    return rng.integers(0, 256, 2304).astype(str).tolist()


BAD_CASES = {
    "wrong pixel count": (lambda px: f"0,{' '.join(px[:-1])},Training", "expected 2304 pixel values"),
    "non-numeric pixel": (
        lambda px: f"0,{' '.join([*px[:9], 'x7', *px[10:]])},Training",
        "non-numeric.*'x7'.*9",
    ),
    "pixel value out of range": (lambda px: f"0,{' '.join(['256', *px[1:]])},Training", "256 at pixel 0"),
    "label out of range": (lambda px: f"7,{' '.join(px)},Training", "emotion 7 is out of range"),
    "label not an integer": (lambda px: f"happy,{' '.join(px)},Training", "'happy' is not an integer"),
    "unknown Usage": (lambda px: f"0,{' '.join(px)},Holdout", "unknown Usage 'Holdout'"),
    "wrong field count": (lambda px: f"0,{' '.join(px)},Training,extra", "expected 3 comma-separated"),
}


@pytest.mark.parametrize("reason", list(BAD_CASES))
def test_bad_row_names_file_and_line(tmp_path, rng, reason):
    make, message = BAD_CASES[reason]
    path = _bad_file(tmp_path, rng, make(_good_pixels(rng)))
    with pytest.raises(DatasetError, match=rf"bad\.csv: line 4 \(data row 2\): .*{message}"):
        load_dataset(_cfg(path))


@pytest.mark.parametrize("reason", list(BAD_CASES))
def test_skip_bad_counts_reason(tmp_path, rng, reason):
    make, _ = BAD_CASES[reason]
    path = _bad_file(tmp_path, rng, make(_good_pixels(rng)))
    ds = load_dataset(_cfg(path, skip_bad=True))
    assert ds.skipped == {reason: 1}
    assert len(ds.split("train")) == 4
    assert "bad.csv:row 2" not in ds.split("train").sources
    assert ds.split("train").sources[2] == "bad.csv:row 3"


def test_skip_bad_counts_several(tmp_path, rng):
    px = _good_pixels(rng)
    rows = make_rows(rng, (3, 1, 1))
    lines = [fer_line(*r) for r in rows]
    lines += [
        BAD_CASES["wrong pixel count"][0](px),
        BAD_CASES["wrong pixel count"][0](px),
        BAD_CASES["unknown Usage"][0](px),
    ]
    ds = load_dataset(_cfg(write_csv(tmp_path / "f.csv", lines), skip_bad=True))
    assert ds.skipped == {"wrong pixel count": 2, "unknown Usage": 1}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("emotion,Usage", "missing column.*pixels"),
        ("label,pixels,Usage", "missing column.*emotion"),
        ("Usage,Image name,neutral", "FER\\+ votes file"),
    ],
)
def test_bad_header(tmp_path, rng, header, message):
    path = write_csv(tmp_path / "h.csv", [fer_line(*r) for r in make_rows(rng, (1, 1, 1))], header=header)
    with pytest.raises(DatasetError, match=message):
        load_dataset(_cfg(path))


def test_missing_header_row(tmp_path, rng):
    rows = [fer_line(*r) for r in make_rows(rng, (2, 1, 1))]
    path = write_csv(tmp_path / "h.csv", rows[1:], header=rows[0])
    with pytest.raises(DatasetError, match="line 1: no header row"):
        load_dataset(_cfg(path))


def test_empty_split_and_empty_file(tmp_path, rng):
    path = write_rows(tmp_path / "e.csv", make_rows(rng, (3, 2, 0)))
    with pytest.raises(DatasetError, match="no PrivateTest rows"):
        load_dataset(_cfg(path))
    (tmp_path / "z.csv").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(_cfg(tmp_path / "z.csv"))
    with pytest.raises(DatasetError, match="no data rows"):
        load_dataset(_cfg(write_csv(tmp_path / "h.csv", [])))
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(_cfg(tmp_path / "missing.csv"))


def test_corrupt_gzip(tmp_path, rng):
    path = write_rows(tmp_path / "c.csv.gz", make_rows(rng, (3, 1, 1)), gz=True)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="cannot read the file"):
        load_dataset(_cfg(path))


def test_size_channels_and_limit(tmp_path, rng):
    rows = make_rows(rng, (28, 7, 7))
    path = write_rows(tmp_path / "f.csv", rows)
    ds = load_dataset(_cfg(path, image_size=64, channels=3, limit=14), seed=0)
    train = ds.split("train")
    assert train.images.shape == (14, 64, 64, 3)
    assert np.bincount(train.labels).tolist() == [2] * 7
    test = ds.split("test")
    expected = prepare_uint8([rows[35][1]], (64, 64), 3)[0].transpose(1, 2, 0)
    assert np.array_equal(test.images[0], expected)


def test_parse_pixels_reports_each_bad_row(rng):
    good = " ".join(_good_pixels(rng)).encode()
    fields = [good, good.replace(b" ", b" 1 ", 1), good + b" 300", b"", good]
    values, bad = parse_pixels(fields)
    assert [(i, r) for i, r, _ in bad] == [
        (1, "wrong pixel count"),
        (2, "wrong pixel count"),
        (3, "wrong pixel count"),
    ]
    assert np.array_equal(values[0], values[4]) and values[0].ravel()[:3].tolist() == [
        int(v) for v in good.split()[:3]
    ]


# ---------------------------------------------------------------------------------------------- cache


def test_cache_written_then_used(tmp_path, rng, monkeypatch):
    path = write_rows(tmp_path / "f.csv", make_rows(rng))
    first = read_fer2013_table(path)
    entries = list((tmp_path / "cache").glob("*.npz"))
    assert len(entries) == 1 and not list((tmp_path / "cache").glob("*.tmp"))

    def boom(*a, **k):
        raise AssertionError("parsed again")

    monkeypatch.setattr(fer2013, "_parse", boom)
    second = read_fer2013_table(path)
    assert np.array_equal(first.images, second.images) and np.array_equal(first.rows, second.rows)
    with pytest.raises(AssertionError, match="parsed again"):
        read_fer2013_table(path, cache=False)


def test_cache_invalidated_by_change_and_survives_corruption(tmp_path, rng):
    rows = make_rows(rng)
    path = write_rows(tmp_path / "f.csv", rows)
    assert read_fer2013_table(path).labels[0] == 0
    rows[0] = (5, rows[0][1], rows[0][2])
    write_rows(path, rows)
    os.utime(path, ns=(1, 1))
    assert read_fer2013_table(path).labels[0] == 5
    entry = cache_mod.cache_path(path, fer2013.CACHE_KIND)
    entry.write_bytes(b"not a zip")
    assert read_fer2013_table(path).labels[0] == 5


def test_cached_bad_file_still_raises_without_skip_bad(tmp_path, rng):
    path = _bad_file(tmp_path, rng, BAD_CASES["unknown Usage"][0](_good_pixels(rng)))
    assert read_fer2013_table(path, skip_bad=True).skipped == {"unknown Usage": 1}
    with pytest.raises(DatasetError, match="unknown Usage"):
        read_fer2013_table(path)


def test_unwritable_cache_is_ignored(tmp_path, rng, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("EMOLENS_CACHE", str(blocker / "cache"))
    path = write_rows(tmp_path / "f.csv", make_rows(rng))
    assert len(read_fer2013_table(path).labels) == 28


# ------------------------------------------------------------------------------------------ real data

README_COUNTS = {
    "train": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "val": [467, 56, 496, 895, 653, 415, 607],
    "test": [491, 55, 528, 879, 594, 416, 626],
}


@pytest.mark.shared
def test_real_fer2013_matches_readme(shared_data):
    path = shared_data / "fer2013" / "fer2013.csv.gz"
    ds = load_dataset(_cfg(path))
    assert ds.skipped == {}
    for split, counts in README_COUNTS.items():
        assert np.bincount(ds.split(split).labels, minlength=7).tolist() == counts
    train = ds.split("train")
    assert train.images.shape == (28709, 48, 48)
    assert train.images[0].ravel()[:4].tolist() == [70, 80, 82, 72]
    hist, values = np.bincount(train.images.ravel(), minlength=256), np.arange(256)
    mean = hist @ values / hist.sum()
    std = np.sqrt(hist @ (values - mean) ** 2 / hist.sum())
    assert abs(mean - 129.5) < 0.1 and abs(std - 65.0) < 0.1
    assert ds.split("val").sources[0] == "fer2013.csv.gz:row 28709"
    assert ds.split("test").sources[-1] == "fer2013.csv.gz:row 35886"

"""Output files are written whole or not at all: to a temporary file beside them, then renamed.

A disk that fills up, a read-only folder or a killed process must never leave a 0-byte or half
``frames.csv`` that looks like a result. Every output goes through :func:`atomic_path` (or its
helpers): the data lands in a hidden temporary file in the same folder, which replaces the target
in one ``os.replace`` once it is complete; on any failure the temporary file is removed and the
target keeps what it had before. An ``OSError`` becomes :class:`OutputError`, which names the
file and says why in words (no space left, read-only file system, permission denied).
"""

from __future__ import annotations

import errno
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from .errors import EmolensError

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.ENOENT: "its folder does not exist",
    errno.ENOTDIR: "a part of its path is not a folder",
    errno.EISDIR: "it is a folder",
}


class OutputError(EmolensError):
    """An output file cannot be written (disk full, read-only or missing folder, no permission)."""

    exit_code = 9
    http_status = 507


def reason(err: OSError) -> str:
    """Why ``err`` happened, in words (``the disk is full``, ``permission denied``, ...)."""
    return _REASONS.get(err.errno or 0) or err.strerror or str(err)


def output_error(path: Path | str, err: OSError) -> OutputError:
    """:class:`OutputError` naming ``path`` and the reason of ``err`` in words."""
    return OutputError(f"cannot write {path}: {reason(err)}")


def temp_beside(path: Path) -> Path:
    """A fresh hidden temporary name in ``path``'s folder, keeping its suffix (writers pick the
    format from it: ``.csv``, ``.parquet``, ``.mp4``, ``.jpg``)."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; it replaces ``path`` when the block ends
    without an error, and is deleted otherwise. ``OSError`` -> :class:`OutputError`."""
    target = Path(path)
    tmp = temp_beside(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as err:
        _discard(tmp)
        raise output_error(target, err) from err
    except BaseException:
        _discard(tmp)
        raise


@contextmanager
def atomic_open(path: Path | str, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` writing to a temporary file that replaces ``path`` once closed cleanly."""
    with atomic_path(path) as tmp, tmp.open(mode, **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def file_sha256(path: Path | str) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _discard(tmp: Path) -> None:
    with suppress(OSError):
        tmp.unlink(missing_ok=True)

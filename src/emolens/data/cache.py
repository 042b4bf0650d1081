"""A small on-disk cache of parsed dataset arrays, so a 300 MB CSV is parsed once.

Entries are uncompressed ``.npz`` files in ``$EMOLENS_CACHE`` (default ``~/.cache/emolens``), keyed
by the source file's absolute path, size and modification time plus a format tag, so an edited or
replaced file is parsed again. Writes go to a temporary file in the same folder and are moved into
place with :func:`os.replace`, so a reader never sees half a file. A cache that cannot be read or
written is ignored (logged): it only ever costs time, never correctness.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ENV_VAR = "EMOLENS_CACHE"


def cache_dir() -> Path:
    """The cache folder: ``$EMOLENS_CACHE`` when set, else ``~/.cache/emolens``."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "emolens"


def cache_path(source: Path, kind: str) -> Path:
    """Where the entry of ``kind`` (a format tag such as ``"fer2013-v1"``) for ``source`` lives."""
    src = source.resolve()
    st = src.stat()
    key = f"{kind}\0{src}\0{st.st_size}\0{st.st_mtime_ns}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return cache_dir() / f"{kind}-{digest}.npz"


def load_cached(source: Path, kind: str) -> dict[str, np.ndarray] | None:
    """The arrays stored for ``source``, or None when there is no usable entry."""
    try:
        path = cache_path(source, kind)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError, EOFError) as e:
        log.warning("ignoring unreadable cache entry for %s: %s", source, e)
        return None


def save_cached(source: Path, kind: str, arrays: dict[str, np.ndarray]) -> Path | None:
    """Store ``arrays`` for ``source`` atomically; returns the entry's path, or None if it failed."""
    try:
        path = cache_path(source, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
    except OSError as e:
        log.warning("could not write the dataset cache for %s: %s", source, e)
        return None

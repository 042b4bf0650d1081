"""Walk folders for images without ever hanging or stopping on what a folder may hold.

A folder can hold things that are not files: a FIFO named ``photo.jpg`` blocks whoever opens it
until something writes to it (forever, usually), a device never ends, a symlink may point at
itself, a sub-folder may be unreadable. :func:`scan_folder` yields only regular files (symlinks to
regular files included) and reports everything it leaves out through ``skip(path, reason)``, so the
caller can say so: nothing is skipped silently, and nothing is opened before it is known to be a
regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

Skip = Callable[[Path, str], None]
"""``skip(path, reason)``: told about each entry left out (not a regular file, unreadable folder)."""


def file_kind(mode: int) -> str:
    """A word for what a ``st_mode`` is when it is not a regular file."""
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return word
    return "not a regular file"


def regular_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (a FIFO, a device, a symlink loop, gone ...), or None
    for a regular file. Only ``stat`` is used: nothing is opened."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks; a loop raises ELOOP
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    except ValueError as err:  # a NUL byte
        return f"is not a usable file name ({err})"
    return None if stat.S_ISREG(mode) else f"is {file_kind(mode)}, not a regular file"


def scan_folder(folder: Path, recursive: bool, wanted: Callable[[Path], bool], skip: Skip) -> Iterator[Path]:
    """Regular files under ``folder`` whose path ``wanted`` accepts, in sorted order; hidden files and
    folders are left out quietly; other files ``wanted`` accepts but that are not regular files, and
    folders that cannot be listed, are reported to ``skip``. Folder symlinks are not followed (no loops)."""
    if not recursive:
        try:
            names = sorted(os.listdir(folder))
        except OSError as err:
            skip(folder, f"folder cannot be read ({err.strerror or err})")
            return
        yield from _files(folder, names, wanted, skip)
        return

    def on_error(err: OSError) -> None:
        skip(Path(err.filename or folder), f"folder cannot be read ({err.strerror or err})")

    for root, dirs, files in os.walk(folder, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield from _files(Path(root), sorted(files), wanted, skip)


def _files(root: Path, names: list[str], wanted: Callable[[Path], bool], skip: Skip) -> Iterator[Path]:
    for name in names:
        p = root / name
        if name.startswith(".") or not wanted(p):
            continue
        problem = regular_file_problem(p)
        if problem is None:
            yield p
        elif "a folder" not in problem:
            skip(p, problem)


def pipe_kind(path: str | Path) -> str | None:
    """``"a FIFO"`` or ``"a socket"`` when ``path`` is one (opening it for reading could block
    forever), else None (regular files, devices such as cameras, URLs, missing paths)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return file_kind(mode) if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None

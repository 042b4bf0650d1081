"""Resumable chunked upload of a viewer's recording: each chunk names the byte offset it starts at.

The page keeps every chunk until the server has acknowledged it. After a network drop it asks the
session how many bytes arrived (``received``) and sends again from there. So a chunk may

* start exactly at ``received``: it is appended;
* start before ``received`` (a resend of bytes the server already holds, the answer was lost):
  the overlapping bytes are written again in place (the same bytes) and ``received`` grows only by
  what is new;
* start after ``received`` (bytes are missing): :class:`UploadOffsetMismatch` (409) carrying
  ``received``, and nothing is written.

Chunks of one session are written one at a time (a lock per session); the session's total is
capped at ``max_bytes`` (:class:`~emolens.errors.MediaTooLarge`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from ..errors import MediaTooLarge
from .models import Session, SessionState, SessionStateError, UploadOffsetMismatch
from .store import StudyStore

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(session_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(session_id, threading.Lock())


def forget_lock(session_id: str) -> None:
    """Drop the lock of a session that takes no more chunks."""
    with _locks_guard:
        _locks.pop(session_id, None)


def check_open(session: Session) -> None:
    """:class:`SessionStateError` unless the session still takes uploads."""
    if not session.state.open:
        why = f" ({session.reason})" if session.reason else ""
        raise SessionStateError(f"this session is {session.state.value}{why}: it takes no more uploads")


def write_chunk(store: StudyStore, session: Session, offset: int, data: Iterable[bytes], max_bytes: int) -> int:
    """Write the chunk ``data`` (an iterable of byte blocks) at ``offset`` of the session's
    recording; returns the new ``received``. See the module doc for resends and gaps."""
    with _lock_for(session.id):
        current = store.session(session.study_id, session.id)  # fresh: another chunk may have landed
        check_open(current)
        if offset > current.received or offset < 0:
            raise UploadOffsetMismatch(
                f"this chunk starts at byte {offset} but the server holds {current.received} bytes of the "
                f"recording: send again from byte {current.received}", current.received)
        path = store.recording_path(session.study_id, session.id)
        end = _write_at(path, offset, data, max_bytes)
        received = max(current.received, end)
        ok = store.update_session(session.study_id, session.id, received=received, state=SessionState.RECORDING,
                                  expect=(SessionState.CONSENTED, SessionState.RECORDING))
        if not ok:  # abandoned meanwhile
            check_open(store.session(session.study_id, session.id))
        return received


def _write_at(path: Path, offset: int, data: Iterable[bytes], max_bytes: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch()
    position = offset
    with path.open("r+b") as out:
        out.seek(offset)
        for block in data:
            if position + len(block) > max_bytes:
                raise MediaTooLarge(f"the recording passes the limit of {max_bytes // (1 << 20)} MB per viewer")
            out.write(block)
            position += len(block)
    return position

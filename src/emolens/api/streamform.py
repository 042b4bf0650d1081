"""A multipart form read as it arrives: every file part goes straight to its own file on disk.

Starlette's form parser keeps each file part under 1 MB in memory and holds every part open until
the whole body has arrived, so an upload of many small files costs its full size in RAM (and one
file descriptor per part). :func:`stream_form` instead hands each file part, as soon as its headers
are read, to a ``place(field, filename, used)`` callback that says where it goes and how many bytes it
may hold; the bytes are written there chunk by chunk and the file is closed at the end of its part.
Memory stays at one network chunk plus the small text fields, whatever the upload holds.

Limits (:class:`FormLimits`): file parts, text fields, bytes per text field; each file's own byte
budget comes from ``place``. Passing one is :class:`~emolens.errors.MediaTooLarge`; a body that is
not multipart, or is broken, is :class:`~emolens.errors.InvalidInput`. Files written before an
error are left for the caller to delete (it owns the folder they went to).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import python_multipart as multipart
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..errors import InvalidInput, MediaTooLarge


@dataclass(frozen=True)
class FormLimits:
    """How much one form may carry (besides each file's own budget)."""

    max_files: int = 1000
    max_fields: int = 32
    max_field_bytes: int = 16 * 1024


@dataclass(frozen=True)
class SavedFile:
    """One file part, written to ``path`` (``size`` bytes); ``filename`` as the client gave it."""

    field: str
    filename: str
    path: Path
    size: int


@dataclass
class StreamedForm:
    """The text fields (name -> values, in order) and the saved files of a form."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[SavedFile] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """Where a file part goes, the most bytes it may hold, and the message when it holds more."""

    path: Path
    limit: int
    too_large: str


Place = Callable[[str, str, int], Target]
"""``place(field, filename, used)`` -> the part's :class:`Target`, ``used`` being the bytes of the
files saved before it; raises to refuse the part."""


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    filename: str | None = None
    text: bytearray = field(default_factory=bytearray)
    out: IO[bytes] | None = None
    target: Target | None = None
    size: int = 0


class _Parser:
    """Collects the parser's callbacks as events; :meth:`drain` acts on them (writes happen off the loop)."""

    def __init__(self, charset: str) -> None:
        self.charset = charset
        self.events: list[tuple[str, bytes]] = []
        self._name = b""
        self._value = b""

    def callbacks(self) -> dict[str, Callable[..., None]]:
        def on_data(kind: str) -> Callable[[bytes, int, int], None]:
            return lambda data, start, end: self.events.append((kind, bytes(data[start:end])))

        def mark(kind: str) -> Callable[[], None]:
            return lambda: self.events.append((kind, b""))

        return {
            "on_part_begin": mark("begin"), "on_part_data": on_data("data"), "on_part_end": mark("end"),
            "on_header_field": on_data("hname"), "on_header_value": on_data("hvalue"),
            "on_header_end": mark("hend"), "on_headers_finished": mark("headers"), "on_end": mark("done"),
        }


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def stream_form(request: Request, place: Place, limits: FormLimits = FormLimits()) -> StreamedForm:
    """Read ``request``'s multipart body, saving each file part where ``place`` says (see the module doc)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput("the request body must be multipart/form-data (with a boundary)")
    charset = _decode(params.get(b"charset", b"utf-8"), "latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    events = _Parser(charset)
    parser = multipart.MultipartParser(params[b"boundary"], events.callbacks())  # type: ignore[arg-type]
    form = StreamedForm()
    state = _State(form, place, limits, charset)
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except multipart.exceptions.FormParserError as err:
                raise InvalidInput(f"the request body is not valid multipart data: {err}") from None
            await state.handle(events.events)
            events.events.clear()
        try:
            parser.finalize()
        except multipart.exceptions.FormParserError as err:
            raise InvalidInput(f"the request body is not valid multipart data: {err}") from None
        await state.handle(events.events)
        if state.part is not None:
            raise InvalidInput("the request body ends in the middle of a part")
    finally:
        await state.close()
    return form


class _State:
    def __init__(self, form: StreamedForm, place: Place, limits: FormLimits, charset: str) -> None:
        self.form, self.place, self.limits, self.charset = form, place, limits, charset
        self.part: _Part | None = None
        self.hname = self.hvalue = b""
        self.nfields = 0

    async def handle(self, events: list[tuple[str, bytes]]) -> None:
        for kind, data in events:
            if kind == "begin":
                self.part = _Part()
            elif kind == "hname":
                self.hname += data
            elif kind == "hvalue":
                self.hvalue += data
            elif kind == "hend" and self.part is not None:
                self.part.headers.append((self.hname.lower(), self.hvalue))
                self.hname = self.hvalue = b""
            elif kind == "headers" and self.part is not None:
                await self._start(self.part)
            elif kind == "data" and self.part is not None:
                await self._data(self.part, data)
            elif kind == "end" and self.part is not None:
                await self._end(self.part)
                self.part = None

    async def _start(self, part: _Part) -> None:
        disposition = next((v for k, v in part.headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise InvalidInput('every part of the form needs a Content-Disposition header with a "name"')
        part.name = _decode(options[b"name"], self.charset)
        if b"filename" not in options:
            self.nfields += 1
            if self.nfields > self.limits.max_fields:
                raise InvalidInput(f"the form has more than {self.limits.max_fields} text fields")
            return
        if len(self.form.files) >= self.limits.max_files:
            most = self.limits.max_files
            raise MediaTooLarge(f"more than {most} files uploaded; the limit is {most}")
        part.filename = _decode(options[b"filename"], self.charset)
        part.target = target = self.place(part.name, part.filename, sum(f.size for f in self.form.files))
        target.path.parent.mkdir(parents=True, exist_ok=True)
        part.out = await run_in_threadpool(target.path.open, "xb")

    async def _data(self, part: _Part, data: bytes) -> None:
        if part.out is None:
            if len(part.text) + len(data) > self.limits.max_field_bytes:
                raise InvalidInput(f"form field {part.name[:100]!r} is longer than {self.limits.max_field_bytes} bytes")
            part.text.extend(data)
            return
        part.size += len(data)
        if part.target is not None and part.size > part.target.limit:
            raise MediaTooLarge(part.target.too_large)
        await run_in_threadpool(part.out.write, data)

    async def _end(self, part: _Part) -> None:
        if part.out is None:
            self.form.fields.setdefault(part.name, []).append(_decode(bytes(part.text), self.charset))
            return
        await run_in_threadpool(part.out.close)
        part.out = None
        assert part.target is not None and part.filename is not None
        self.form.files.append(SavedFile(part.name, part.filename, part.target.path, part.size))

    async def close(self) -> None:
        if self.part is not None and self.part.out is not None:
            await run_in_threadpool(self.part.out.close)

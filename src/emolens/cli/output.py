"""Output formats shared by the CLI commands: ``table``, ``json``, ``jsonl`` and ``csv``.

A :class:`ResultWriter` receives a stream of :class:`~emolens.results.ImageResult` and writes it
as it arrives (nothing piles up, even for ``json``, which is written as one document piece by piece):

* ``jsonl``: one line per image, ``ImageResult.to_dict()``;
* ``json``: one document ``{"images": [...], "summary": {...}, "errors": [...]}``;
* ``csv``: one row per face (``source, face, x, y, w, h, detection_score, emotion`` and one column
  per label probability); an image without faces gets one row with empty face fields;
* ``table``: a rich table per image and a summary table.

:func:`print_table` and :func:`write_json` serve simpler listings (``emolens models``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import InvalidInput

if TYPE_CHECKING:  # rich and the results are imported when output is written, not at CLI start-up
    from rich.console import Console
    from rich.table import Table

    from ..inference.summary import EmotionSummary
    from ..results import FaceResult, ImageResult


class OutputFormat(StrEnum):
    """The formats of ``emolens analyze --format``."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def _console(stream: TextIO) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=False, emoji=False, markup=False)


def print_table(
    stream: TextIO, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    """A rich table with ``columns`` and ``rows`` (values shown with ``str``)."""
    if title:
        _console(stream).print(title)
    table = _table()
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    _console(stream).print(table)


def _table() -> Table:
    from rich.table import Table

    return Table()


def write_json(stream: TextIO, obj: Any) -> None:
    """``obj`` as indented JSON and a newline."""
    stream.write(json.dumps(obj, indent=2) + "\n")


class ResultWriter:
    """Base writer: ``start(labels)``, then ``image(result)`` / ``error(source, err)`` per input,
    then ``finish(summary)``. ``machine`` tells whether the format is for programs (the CLI then
    prints its human summary to stderr)."""

    machine = True

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.labels: tuple[str, ...] = ()

    def start(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)

    def image(self, result: ImageResult) -> None:
        raise NotImplementedError

    def error(self, source: str, err: BaseException) -> None:
        """Record an input that could not be read (only ``json`` keeps them in its output)."""

    def finish(self, summary: EmotionSummary) -> None:
        """Write whatever closes the output."""


class JsonlWriter(ResultWriter):
    def image(self, result: ImageResult) -> None:
        self.stream.write(json.dumps(result.to_dict()) + "\n")


class JsonWriter(ResultWriter):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._n = 0
        self._errors: list[dict[str, str]] = []

    def start(self, labels: Sequence[str]) -> None:
        super().start(labels)
        self.stream.write('{\n"images": [')

    def image(self, result: ImageResult) -> None:
        self.stream.write(("," if self._n else "") + "\n" + json.dumps(result.to_dict()))
        self._n += 1

    def error(self, source: str, err: BaseException) -> None:
        self._errors.append({"source": source, "error": type(err).__name__, "message": str(err)})

    def finish(self, summary: EmotionSummary) -> None:
        self.stream.write(("\n" if self._n else "") + "],\n")
        self.stream.write('"summary": ' + json.dumps(summary.to_dict()) + ",\n")
        self.stream.write('"errors": ' + json.dumps(self._errors) + "\n}\n")


CSV_FACE_COLUMNS = ("source", "face", "x", "y", "w", "h", "detection_score", "emotion", "roll", "yaw", "pitch",
                    "looking", "whole_image", "keypoints")
"""Columns before the probabilities; ``roll`` (degrees) and ``keypoints`` (JSON ``{name: [x, y]}``) are
empty without a keypoint model; ``yaw``/``pitch`` (degrees) and ``looking`` (1/0) are empty when no pose
was found; ``whole_image`` is 1 when the whole (small) image was taken as the face."""


class CsvWriter(ResultWriter):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._csv = csv.writer(stream, lineterminator="\n")

    def start(self, labels: Sequence[str]) -> None:
        super().start(labels)
        self._csv.writerow([*CSV_FACE_COLUMNS, *self.labels])

    def image(self, result: ImageResult) -> None:
        if not result.faces:
            self._csv.writerow([result.source] + [""] * (len(CSV_FACE_COLUMNS) - 1 + len(self.labels)))
            return
        for i, face in enumerate(result.faces):
            probs = [f"{float(face.probabilities.get(lb, 0.0)):.6f}" for lb in self.labels]
            x, y, w, h = (int(v) for v in face.box)
            from ..results import keypoints_json

            pose = ["" if v is None else f"{float(v):.2f}" for v in (face.roll, face.yaw, face.pitch)]
            looking = "" if face.looking is None else int(face.looking)
            self._csv.writerow([result.source, i, x, y, w, h, f"{float(face.detection_score):.6f}", face.emotion,
                                *pose, looking, int(face.whole_image), keypoints_json(face), *probs])


class TableWriter(ResultWriter):
    machine = False

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._console = _console(stream)
        self._errors = 0

    def image(self, result: ImageResult) -> None:
        head = f"{result.source} ({result.width}x{result.height})"
        if not result.faces:
            self._console.print(f"{head}: no face found")
            return
        n = len(result.faces)
        self._console.print(f"{head}: {n} face{'s' if n != 1 else ''}")
        table = _table()
        for col, justify in (("#", "right"), ("box x,y,w,h", "left"), ("det", "right"),
                             ("emotion", "left"), ("conf", "right"), ("runners-up", "left"),
                             ("head yaw/pitch", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for i, face in enumerate(result.faces):
            ranked = sorted(face.probabilities.items(), key=lambda kv: -kv[1])
            runners = ", ".join(f"{lb} {p:.0%}" for lb, p in ranked[1:3] if lb != face.emotion)
            table.add_row(
                str(i), ",".join(str(int(v)) for v in face.box), f"{face.detection_score:.2f}",
                face.emotion, f"{face.confidence:.0%}", runners, _head(face),
            )
        self._console.print(table)
        for warning in result.warnings:
            self._console.print(f"warning: {warning}")

    def error(self, source: str, err: BaseException) -> None:
        self._errors += 1

    def finish(self, summary: EmotionSummary) -> None:
        title = f"Summary: {summary.faces} face(s) in {summary.images} image(s)"
        if summary.images - summary.images_with_faces:
            title += f", {summary.images - summary.images_with_faces} without faces"
        if self._errors:
            title += f", {self._errors} unreadable"
        self._console.print(title)
        table = _table()
        for col in ("emotion", "faces", "share", "mean prob"):
            table.add_column(col, justify="left" if col == "emotion" else "right")
        shares = summary.shares
        for lb in summary.labels:
            table.add_row(lb, str(summary.counts[lb]), f"{shares[lb]:.1%}",
                          f"{summary.mean_probabilities[lb]:.3f}")
        self._console.print(table)


_WRITERS: dict[str, type[ResultWriter]] = {
    "table": TableWriter, "json": JsonWriter, "jsonl": JsonlWriter, "csv": CsvWriter,
}


def make_writer(fmt: str | OutputFormat, stream: TextIO) -> ResultWriter:
    """The writer for a format name; raises :class:`~emolens.errors.InvalidInput` for an unknown one."""
    name = fmt.value if isinstance(fmt, OutputFormat) else fmt
    try:
        return _WRITERS[name](stream)
    except KeyError:
        raise InvalidInput(f"unknown output format {name!r}; known: {', '.join(_WRITERS)}") from None


def _head(face: FaceResult) -> str:
    """The table's head-pose cell: looking or not, with yaw/pitch; the whole-image fallback said so."""
    if face.whole_image:
        return "whole image"
    if face.yaw is None or face.pitch is None:
        return "-"
    return f"{'looking' if face.looking else 'away'} {face.yaw:+.0f}/{face.pitch:+.0f}"

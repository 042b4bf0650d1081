"""CLI command ``emolens analyze PATH...``: emotions of every face in photos, files and folders.

A thin shell over :class:`~emolens.inference.analyzer.Analyzer`: it expands the paths (files,
folders, globs) into a deterministic list, classifies them in batches across files with
``analyze_many``, streams the results to stdout in the chosen format (:mod:`.output`), optionally
writes annotated copies, and ends with the emotion distribution over all faces. Unreadable files are
reported on stderr and skipped; the exit code is 0 when at least one file was read, otherwise that of
the first error (3 for a file that is not an image). torch is never imported here.

Folders are walked by :mod:`.walk`: a FIFO, a device, a symlink loop or an unreadable sub-folder is
skipped with a ``warning:`` naming it (never opened, so never a hang). An annotated copy that cannot
be written (disk full, read-only folder) is reported and the run goes on; the run then ends with
exit code 8 (:data:`~emolens.partial.PARTIAL_EXIT_CODE`): the results are whole, the copies are not.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import EmolensError, InvalidInput, UnsupportedMedia
from ..partial import PARTIAL_EXIT_CODE
from .output import OutputFormat
from .walk import Skip, regular_file_problem, scan_folder

if TYPE_CHECKING:
    from ..inference.analyzer import Analyzer
    from ..results import ImageResult

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
"""Extensions picked up from folders and globs (a file named explicitly is always tried)."""

PROGRESS_MIN_FILES = 4
_GLOB_CHARS = frozenset("*?[")


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _expand_one(arg: str, recursive: bool, skip: Skip) -> list[Path]:
    p = Path(arg).expanduser()
    if p.is_dir():
        return list(scan_folder(p, recursive, _is_image_name, skip))
    if os.path.lexists(p):  # a file named explicitly: any extension, but only a regular file is opened
        problem = regular_file_problem(p)
        if problem is not None:
            skip(p, problem)
            return []
        return [p]
    if not _GLOB_CHARS & set(arg):
        return []
    out: list[Path] = []
    for match in sorted(glob.glob(os.path.expanduser(arg), recursive=True)):
        m = Path(match)
        if m.is_dir():
            out.extend(scan_folder(m, recursive, _is_image_name, skip))
        elif _is_image_name(m):
            problem = regular_file_problem(m)
            if problem is None:
                out.append(m)
            else:
                skip(m, problem)
    return out


def collect_inputs(
    args: Sequence[str], *, recursive: bool = True, skipped: list[tuple[Path, str]] | None = None
) -> tuple[list[Path], list[str]]:
    """Expand paths, folders and globs into image files, and list the arguments that matched nothing.

    Order is deterministic: arguments in the order given, folder and glob contents sorted by path.
    A file named explicitly is kept whatever its extension; folders and globs yield only
    :data:`IMAGE_EXTENSIONS`. A file reached twice is listed once (first position). Entries that
    are not regular files (FIFOs, devices, symlink loops) and folders that cannot be read are
    never opened: they are appended to ``skipped`` as ``(path, reason)``.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    unmatched: list[str] = []
    left_out: list[tuple[Path, str]] = [] if skipped is None else skipped
    for arg in args:
        before = len(left_out)
        found = _expand_one(arg, recursive, lambda path, why: left_out.append((path, why)))
        if not found and len(left_out) == before:
            unmatched.append(arg)
        for f in found:
            try:
                key = f.resolve()
            except (OSError, RuntimeError):
                key = f.absolute()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files, unmatched


def annotation_names(files: Sequence[Path]) -> list[str]:
    """Output file names for annotated copies: base name + ``.png`` for PNG sources, else ``.jpg``.

    Clashes (same base name in different folders, or ``a.jpg`` next to ``a.jpeg``) get ``_2``, ``_3``...
    in input order, never reusing a name another file already has.
    """
    wanted = [f.stem + (".png" if f.suffix.lower() == ".png" else ".jpg") for f in files]
    taken = {w.lower() for w in wanted}
    used: set[str] = set()
    out: list[str] = []
    for name in wanted:
        final = name
        if final.lower() in used:
            stem, ext = os.path.splitext(name)
            k = 2
            while f"{stem}_{k}{ext}".lower() in used | taken:
                k += 1
            final = f"{stem}_{k}{ext}"
        used.add(final.lower())
        out.append(final)
    return out


def _write_annotated(path: Path, result: ImageResult, target: Path) -> None:
    """Write the annotated copy whole or not at all (:mod:`emolens.fsio`); OutputError when it cannot be."""
    import cv2

    from ..fsio import OutputError, atomic_path
    from ..inference.annotate import annotate
    from ..inference.imageio import load_image

    rgb = annotate(load_image(path).rgb, result)
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if target.suffix == ".jpg" else []
    with atomic_path(target) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
            free = _free_bytes(target.parent)
            why = "the disk is full" if free is not None and free < 1 << 20 else "OpenCV could not write it"
            raise OutputError(f"cannot write the annotated image {target}: {why}")


def _free_bytes(folder: Path) -> int | None:
    try:
        return int(os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize)
    except (OSError, AttributeError):
        return None


def _outcomes(
    analyzer: Analyzer, files: Sequence[Path], batch_size: int, cropped: bool, workers: int = 1
) -> Iterator[tuple[Path, ImageResult | EmolensError]]:
    """(file, its result or the error that made it unreadable) for every file.

    Results come in input order; an error is yielded as soon as ``analyze_many`` reports it, which
    can be before the results of earlier files still waiting in a classifier batch.
    """
    by_name = {str(f): f for f in files}
    failed: list[tuple[str, EmolensError]] = []
    stream = analyzer.analyze_many(
        [(name, name) for name in by_name], batch_size=batch_size, cropped=cropped, workers=workers,
        on_error=lambda source, err: failed.append((source, err)),
    )
    for result in stream:
        while failed:
            source, err = failed.pop(0)
            yield by_name.get(source, Path(source)), err
        yield by_name.get(result.source, Path(result.source)), result
    for source, err in failed:
        yield by_name.get(source, Path(source)), err


def _progress(total: int, force: bool | None) -> Any:
    from tqdm import tqdm

    show = force if force is not None else (total >= PROGRESS_MIN_FILES and sys.stderr.isatty())
    return tqdm(total=total, file=sys.stderr, disable=not show, unit="img", leave=False, dynamic_ncols=True)


def _prepare_outdir(outdir: Path) -> None:
    from ..imgops import require_cv2

    require_cv2("drawing annotated images (--annotate)")  # MissingExtra before any work
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInput(f"cannot create the annotation folder {outdir}: {e.strerror or e}") from e
    if not outdir.is_dir():
        raise InvalidInput(f"--annotate {outdir} is not a folder")


def _report(source: str, err: BaseException, bar: Any = None, prefix: str = "error") -> None:
    """``error: <message naming the file>`` on stderr (above the progress bar when one is shown)."""
    msg = str(err) or type(err).__name__
    line = f"{prefix}: {msg}" if source in msg else f"{prefix}: {source}: {msg}"
    if bar is not None and not bar.disable:
        bar.write(line, file=sys.stderr)
    else:
        typer.echo(line, err=True)


def run_analysis(
    analyzer: Analyzer,
    files: Sequence[Path],
    *,
    fmt: OutputFormat = OutputFormat.table,
    annotate_dir: Path | None = None,
    batch_size: int = 64,
    cropped: bool = False,
    progress: bool | None = None,
    prior_errors: Iterable[tuple[str, BaseException]] = (),
    prior_warnings: Iterable[tuple[str, BaseException]] = (),
    workers: int = 1,
    outcomes: Iterable[tuple[Path, ImageResult | EmolensError]] | None = None,
) -> tuple[int, list[EmolensError], list[EmolensError]]:
    """Analyse ``files`` and stream them to stdout; returns (files read, their errors in order, the
    annotated copies that could not be written).

    ``prior_errors`` (arguments that matched nothing) and ``prior_warnings`` (entries skipped) are
    reported first and kept in ``json`` output. An annotated copy that cannot be written is reported
    on stderr and the run goes on. ``outcomes``: (file, result or error) pairs computed elsewhere (on Ray),
    in input order, used instead of running ``analyzer`` (which then only gives the labels).
    """
    from ..inference.summary import SummaryBuilder
    from .output import make_writer

    writer = make_writer(fmt, sys.stdout)
    writer.start(analyzer.labels)
    summary = SummaryBuilder(analyzer.labels)
    errors: list[EmolensError] = []
    annotate_failures: list[EmolensError] = []
    for source, err in prior_errors:
        _report(source, err)
        writer.error(source, err)
    for source, err in prior_warnings:  # entries skipped unopened (FIFOs, loops, unreadable folders)
        _report(source, err, prefix="warning")
        writer.error(source, err)
    names = annotation_names(files) if annotate_dir is not None else []
    index = {f: i for i, f in enumerate(files)}
    read = 0
    with _progress(len(files), progress) as bar:
        stream = outcomes if outcomes is not None else _outcomes(analyzer, files, batch_size, cropped, workers)
        for path, outcome in stream:
            bar.update(1)
            if isinstance(outcome, EmolensError):
                _report(str(path), outcome, bar)
                writer.error(str(path), outcome)
                errors.append(outcome)
                continue
            read += 1
            writer.image(outcome)
            summary.add(outcome)
            if annotate_dir is not None:
                try:
                    _write_annotated(path, outcome, annotate_dir / names[index[path]])
                except EmolensError as err:  # disk full, read-only: the results go on, the copy is missing
                    _report(str(path), err, bar, prefix="warning")
                    annotate_failures.append(err)
    built = summary.build()
    writer.finish(built)
    if writer.machine:
        typer.echo(f"summary: {built.describe()}", err=True)
        if built.faces:
            typer.echo(f"mean probabilities: {built.describe_means()}", err=True)
    return read, errors, annotate_failures


def _ray_outcomes(files: Sequence[Path], cropped: bool, address: str | None, threads: int,
                  options: dict[str, Any]) -> Iterator[tuple[Path, ImageResult | EmolensError]]:
    """(file, result or error) for every file, analysed on Ray actors (:mod:`emolens.cluster.ray_batch`)."""
    from ..cluster.ray_batch import analyze_images
    from ..cluster.worker import EngineSpec

    spec = EngineSpec(threads=max(1, threads), **options)
    for o in analyze_images(files, spec, cropped=cropped, address=address, progress=False):
        yield files[o.index], (o.value if o.error is None else o.error)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured output)
        pass


def register(app: typer.Typer) -> None:
    """Add ``analyze`` to the app."""

    @app.command("analyze")
    def analyze(
        paths: list[str] = typer.Argument(..., help="image files, folders or globs (quoted globs work too)"),
        fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="output format"),
        annotate: Path | None = typer.Option(None, "--annotate", help="write annotated copies here"),
        model: str | None = typer.Option(None, "--model", help="ONNX file or packaged model name (emolens models)"),
        detector: str = typer.Option("auto", "--detector", help="face detector name"),
        no_align: bool = typer.Option(False, "--no-align", help="do not rotate faces upright first"),
        no_keypoints: bool = typer.Option(
            False, "--no-keypoints", help="skip the facial-keypoint model (no keypoints/roll in the output)"
        ),
        tta: bool = typer.Option(False, "--tta", help="also classify the mirrored face and average"),
        max_yaw: float = typer.Option(30.0, "--max-yaw", min=0.1, max=90.0,
                                      help="a face is 'looking' at the camera within this yaw (degrees)"),
        max_pitch: float = typer.Option(25.0, "--max-pitch", min=0.1, max=90.0,
                                        help="... and within this pitch (degrees)"),
        cropped: bool = typer.Option(False, "--cropped", help="inputs are face crops: skip detection"),
        batch_size: int = typer.Option(64, "--batch-size", min=1, help="faces per classifier batch"),
        threads: int = typer.Option(0, "--threads", min=0,
                                    help="ONNX Runtime threads per model (0 = one, measured fastest here)"),
        workers: int = typer.Option(
            0, "--workers", min=0, help="images decoded and searched for faces at once (0 = one per CPU core)"
        ),
        recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="descend into sub-folders"),
        progress: bool | None = typer.Option(
            None, "--progress/--no-progress", help="progress bar on stderr (default: many files on a tty)"
        ),
        use_ray: bool = typer.Option(False, "--ray", help="analyse the files on a local Ray (cluster extra)"),
        ray_address: str | None = typer.Option(
            None, "--ray-address", help="... or on this Ray cluster (e.g. ray://head:10001; implies --ray)"
        ),
    ) -> None:
        """Read the emotion of every face in images, folders and globs."""
        skipped: list[tuple[Path, str]] = []
        files, unmatched = collect_inputs(paths, recursive=recursive, skipped=skipped)
        if not files:
            for path, why in skipped:
                typer.echo(f"warning: {path}: skipped: {why}", err=True)
            raise InvalidInput("no input matched: " + ", ".join(repr(a) for a in paths)
                               + " (expected image files, folders holding images, or globs)")
        if annotate is not None:
            _prepare_outdir(annotate)
        from ..inference.analyzer import Analyzer
        from ..inference.headpose import AttentionLimits

        an = Analyzer(model=model, detector=detector, align=not no_align, tta=tta, threads=threads,
                      keypoints=False if no_keypoints else None, attention=AttentionLimits(max_yaw, max_pitch))
        missing = [(a, InvalidInput(f"no such file or folder, or nothing matched: {a}")) for a in unmatched]
        left_out = [(str(p), UnsupportedMedia(f"{p}: skipped: {why}")) for p, why in skipped]
        on_ray = None
        if use_ray or ray_address is not None:  # one actor per `--threads` CPUs (default 1), same results
            from ..cluster.ray_batch import require_ray

            require_ray()  # MissingExtra before any output starts (a JSON array left open, ...)
            on_ray = _ray_outcomes(files, cropped, ray_address, threads, dict(
                model=model, detector=detector, align=not no_align, tta=tta, keypoints=not no_keypoints,
                max_yaw=max_yaw, max_pitch=max_pitch))
        try:
            read, errors, unwritten = run_analysis(
                an, files, fmt=fmt, annotate_dir=annotate, batch_size=batch_size, cropped=cropped,
                progress=progress, prior_errors=missing, prior_warnings=left_out,
                workers=workers or min(8, os.cpu_count() or 1), outcomes=on_ray,
            )
        except BrokenPipeError:  # `emolens analyze ... | head`: the reader left, stop quietly
            _silence_stdout()
            return
        if read == 0:
            cls = type(errors[0]) if errors else UnsupportedMedia
            raise cls(f"none of the {len(files)} input file(s) could be read")
        if unwritten:
            typer.echo(f"error: {len(unwritten)} annotated copy(ies) could not be written; first: {unwritten[0]}",
                       err=True)
            raise typer.Exit(PARTIAL_EXIT_CODE)

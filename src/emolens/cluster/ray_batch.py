"""Analyse many image or video files on Ray: actors that load the engine once, results in input order.

    from emolens.cluster.ray_batch import analyze_images, analyze_videos
    from emolens.cluster.worker import EngineSpec

    for o in analyze_images(paths, EngineSpec(model="fer7", threads=1)):       # local Ray, one actor per core
        print(o.path, o.value.faces if o.ok else o.error)
    for o in analyze_videos(clips, "out/", address="ray://head:10001"):        # an existing cluster
        print(o.path, o.value["tracks_count"] if o.ok else o.error)           # out/<clip name>/frames.csv, ...

``emolens video A B --out ROOT --ray`` and ``emolens campaign analyze --ray`` (:func:`analyze_recordings`,
one frame table per recording) run on the same actors. ``import ray`` happens only when work goes to Ray
(a missing package: :class:`~emolens.errors.MissingExtra` naming the ``cluster`` extra).

Each actor builds one :class:`~emolens.cluster.worker.FileWorker` (the models loaded once) and asks
Ray for ``spec.threads`` CPUs, the thread budget its models run with, so actors never fight over cores.
Outcomes come back in input order (``Outcome.index``), one per file, never dropped: a file the engine
refuses (not an image, a corrupt video) is reported with its named error at once, since reading the
same bytes again gives the same answer; a worker failure (an unexpected exception, a crashed or
killed worker process, whose actor is then replaced by a new one) is retried on up to ``max_retries``
more attempts and then reported as :class:`~emolens.errors.BackendError`. A tqdm bar on stderr shows progress.

Ray starts a local instance when none is running (``address=None``) or joins ``address``; it is
shut down again only if this call started it. Per-file results equal a single-process run's:
images are analysed as ``Analyzer.analyze`` does, videos written by :func:`~.worker.record_video`,
campaign recordings read by :func:`~emolens.campaign.recording.read_recording`.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, EmolensError, InvalidInput, MissingExtra
from .worker import EngineSpec, Factory, FileWorker

DEFAULT_MAX_RETRIES = 2


@dataclass(frozen=True)
class Outcome:
    """One input file's outcome: its ``index`` in the input, ``path``, the ``value`` (an
    :class:`~emolens.results.ImageResult`, or a video's summary dict) or the ``error``, and how many
    ``attempts`` it took."""

    index: int
    path: str
    value: Any
    error: EmolensError | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RayOptions:
    """Where and how work runs on Ray, for callers that hand a whole step over (``analyze_campaign(ray=...)``):
    ``spec`` the engine each actor builds, ``address`` a cluster (None: a local Ray), ``actors`` how many
    (None: one per ``spec.threads`` CPUs), ``max_retries`` per file, ``factory`` builds the engine from the
    spec (default :func:`~.worker.build_analyzer`)."""

    spec: EngineSpec = field(default_factory=EngineSpec)
    address: str | None = None
    actors: int | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    factory: Factory | None = None


def require_ray() -> Any:
    """The ``ray`` module, imported only when work goes to Ray; :class:`~emolens.errors.MissingExtra`
    (naming the ``cluster`` extra) when it is not installed."""
    try:
        import ray
    except ImportError as e:
        raise MissingExtra("running on Ray (--ray) needs the optional package 'ray', which is not installed: "
                           "pip install 'emolens[cluster]' (or 'emolens[all]')", extra="cluster") from e
    return ray


def output_folders(paths: Sequence[str | Path], out_root: str | Path) -> list[Path]:
    """One output folder per video under ``out_root``, named after the file (``clip``, ``clip_2`` for a
    second ``clip.*``), in input order."""
    used: set[str] = set()
    out = []
    for p in paths:
        stem, name, k = Path(p).stem or "video", Path(p).stem or "video", 2
        while name.lower() in used:
            name, k = f"{stem}_{k}", k + 1
        used.add(name.lower())
        out.append(Path(out_root) / name)
    return out


def analyze_images(paths: Sequence[str | Path], spec: EngineSpec | None = None, *, cropped: bool = False,
                   actors: int | None = None, max_retries: int = DEFAULT_MAX_RETRIES, progress: bool | None = None,
                   address: str | None = None, factory: Factory | None = None) -> Iterator[Outcome]:
    """Analyse image files on Ray; yields one :class:`Outcome` per path, in input order (value: ImageResult)."""
    calls = [("image", (str(p), cropped)) for p in paths]
    return _run(calls, [str(p) for p in paths], spec or EngineSpec(), actors=actors, max_retries=max_retries,
                progress=progress, address=address, factory=factory, unit="img")


def analyze_videos(paths: Sequence[str | Path], out_root: str | Path | None, spec: EngineSpec | None = None, *,
                   options: Any = None, annotate: bool = False, blur: bool = False,
                   folders: Sequence[str | Path] | None = None, actors: int | None = None,
                   max_retries: int = DEFAULT_MAX_RETRIES, progress: bool | None = None, address: str | None = None,
                   factory: Factory | None = None) -> Iterator[Outcome]:
    """Analyse video files on Ray, each into ``out_root/<name>/`` (see :func:`output_folders`; or into
    ``folders``, one per path, when given) as ``emolens video --out`` does; ``options``: a
    :class:`~emolens.video.stream.VideoOptions` (default: ``emolens video``'s); ``annotate``/``blur``: also
    annotated.mp4, as ``--annotate``/``--blur``. Yields one :class:`Outcome` per path, in input order (value:
    the summary dict). On a multi-node cluster the output folders must be on storage every node can write."""
    if folders is None:
        if out_root is None:
            raise InvalidInput("analyze_videos needs an output root (out_root) or one folder per video (folders)")
        folders = output_folders(paths, out_root)
    elif len(folders) != len(paths):
        raise InvalidInput(f"{len(paths)} video(s) but {len(folders)} output folder(s)")
    calls = [("video", (str(p), str(f), options, annotate, blur)) for p, f in zip(paths, folders, strict=True)]
    return _run(calls, [str(p) for p in paths], spec or EngineSpec(), actors=actors, max_retries=max_retries,
                progress=progress, address=address, factory=factory, unit="video")


def analyze_recordings(recordings: Sequence[tuple[str, str | Path, tuple[float, float]]], sample_fps: float,
                       spec: EngineSpec | None = None, *, actors: int | None = None,
                       max_retries: int = DEFAULT_MAX_RETRIES, progress: bool | None = None,
                       address: str | None = None, factory: Factory | None = None) -> Iterator[Outcome]:
    """Read campaign recordings on Ray: ``(kind, path, window)`` each (``kind`` "video" or "photos", the ad's
    time window in the recording), as :func:`emolens.campaign.recording.read_recording` does with an
    :class:`~emolens.campaign.recording.EngineAnalyser` at ``sample_fps``. Yields one :class:`Outcome` per
    recording, in input order (value: its frame table, a pandas DataFrame)."""
    calls = [("recording", (kind, str(path), (float(window[0]), float(window[1])), float(sample_fps)))
             for kind, path, window in recordings]
    return _run(calls, [str(path) for _, path, _ in recordings], spec or EngineSpec(), actors=actors,
                max_retries=max_retries, progress=progress, address=address, factory=factory, unit="rec")


def _progress(total: int, show: bool | None, unit: str) -> Any:
    from tqdm import tqdm

    show = show if show is not None else sys.stderr.isatty()
    return tqdm(total=total, file=sys.stderr, disable=not show, unit=unit, leave=False, dynamic_ncols=True)


def _start(ray: Any, address: str | None) -> bool:
    """Connect to Ray (a local instance when ``address`` is None); True when this call started it."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BackendError(f"cannot start or join Ray at {address or 'a local instance'}: {e}") from e
    return True


def _actors(ray: Any, spec: EngineSpec, factory: Factory | None, count: int | None) -> tuple[list[Any], Any]:
    """(the actor pool, a function that starts one more actor), each actor's engine built and checked (an
    engine that cannot be built raises its named error here, before any file)."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    n = count if count is not None else max(1, cpus // spec.threads)
    if n < 1:
        raise InvalidInput(f"actors must be >= 1, got {n}")
    remote = ray.remote(num_cpus=spec.threads, max_restarts=0, max_task_retries=0)(FileWorker)
    env = {"env_vars": {"OMP_NUM_THREADS": str(spec.threads)}}

    def spawn() -> Any:
        return remote.options(runtime_env=env).remote(spec, factory)

    pool = [spawn() for _ in range(n)]
    try:
        ray.get([a.ready.remote() for a in pool])
    except ray.exceptions.RayError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, EmolensError):
            raise cause from None
        raise BackendError(f"the Ray workers could not build the engine: {e}") from e
    return pool, spawn


def _run(calls: list[tuple[str, tuple[Any, ...]]], names: list[str], spec: EngineSpec, *, actors: int | None,
         max_retries: int, progress: bool | None, address: str | None, factory: Factory | None,
         unit: str) -> Iterator[Outcome]:
    if max_retries < 0:
        raise InvalidInput(f"max_retries must be >= 0, got {max_retries}")
    if not calls:
        return iter(())
    ray = require_ray()

    def stream() -> Iterator[Outcome]:  # Ray is joined when the first outcome is asked for
        started = _start(ray, address)
        try:
            pool, spawn = _actors(ray, spec, factory, actors)
            with _progress(len(calls), progress, unit) as bar:
                yield from _schedule(ray, pool, spawn, calls, names, max_retries, bar.update)
        finally:
            if started:
                ray.shutdown()

    return stream()


def _schedule(ray: Any, pool: list[Any], spawn: Callable[[], Any], calls: list[tuple[str, tuple[Any, ...]]],
              names: list[str], max_retries: int, tick: Callable[[int], Any]) -> Iterator[Outcome]:
    """One call per free actor; outcomes yielded in input order as soon as they are contiguous. An actor
    whose process died is replaced by a new one (``spawn``)."""
    todo: deque[tuple[int, int]] = deque((i, 1) for i in range(len(calls)))
    free = list(pool)
    running: dict[Any, tuple[Any, int, int]] = {}
    done: dict[int, Outcome] = {}
    next_out = 0
    while todo or running:
        while todo and free:
            i, attempt = todo.popleft()
            actor = free.pop()
            method, args = calls[i]
            running[getattr(actor, method).remote(*args)] = (actor, i, attempt)
        (ref,), _ = ray.wait(list(running), num_returns=1)
        actor, i, attempt = running.pop(ref)
        try:
            status, value = ray.get(ref)
        except ray.exceptions.RayError as e:
            free.append(spawn() if isinstance(e, ray.exceptions.RayActorError) else actor)
            if attempt <= max_retries:
                todo.appendleft((i, attempt + 1))
                continue
            err = BackendError(f"{names[i]}: failed {attempt} time(s) on Ray: {_first_line(e)}")
            done[i] = Outcome(i, names[i], None, err, attempt)
        else:
            free.append(actor)
            done[i] = Outcome(i, names[i], value if status == "ok" else None,
                              value if status == "error" else None, attempt)
        tick(1)
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1


def _first_line(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    text = f"{type(cause).__name__}: {cause}" if cause is not None else str(err)
    return (text.strip().splitlines() or [type(err).__name__])[0][:300]

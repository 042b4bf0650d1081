"""CLI commands ``emolens campaign analyze MANIFEST --out DIR`` and ``emolens campaign demo --out DIR``.

A thin shell over :func:`emolens.campaign.analyze_campaign`: it parses the options, runs the
analysis (progress bar over recordings on stderr), prints a short ranking table and the path of
the report. ``--ray`` / ``--ray-address`` read the recordings on Ray actors (cluster extra), same outputs.
A bad manifest or option raises an :class:`~emolens.errors.EmolensError`, which
:func:`emolens.cli.main` turns into one line on stderr and its exit code. torch is never imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..partial import PARTIAL_EXIT_CODE

if TYPE_CHECKING:
    from ..campaign.run import CampaignResult, CampaignSettings
    from ..cluster.ray_batch import RayOptions
    from ..inference.analyzer import Analyzer

_PIPE_WIDTH = 160  # tables printed to pipes and files at this width (terminals use their own)
_SHOWN_KPIS = ("valence_index", "positive_share", "expressiveness", "face_found_rate")
_DIRECTION = {"higher": "higher better", "lower": "lower better", "none": "no direction"}


def default_media_dir() -> Path:
    """``$EMOLENS_SHARED/data/media`` when EMOLENS_SHARED is set, else ``../shared/data/media``."""
    shared = os.environ.get("EMOLENS_SHARED")
    return (Path(shared) if shared else Path.cwd().parent / "shared") / "data" / "media"


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{float(v):.3f}"


def _print_table(columns: list[str], rows: list[list[str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < 2 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    width = None if sys.stdout.isatty() else _PIPE_WIDTH
    Console(file=sys.stdout, width=width, highlight=False, emoji=False, markup=False).print(table)


def print_ranking(result: CampaignResult) -> None:
    """The verdict (the same sentence as summary.json and report.html), then the ads with their
    viewers and headline KPIs (value [CI]; "-" where a group is too small for an interval), best
    valence first, equal values sharing a rank."""
    summary = result.summary
    verdict = summary.get("verdict") or {}
    typer.echo(f"verdict: {verdict.get('text', 'none')}")
    ads = {a["name"]: a for a in summary["ads"]}
    ranking = {r["kpi"]: r for r in summary["ranking"]}
    order: list[dict[str, Any]] = ranking.get("valence_index", {}).get("rows", [])
    rows = []
    for r in order:
        ad = ads[r["ad"]]
        cells = [f"{_fmt(ad['kpis'][k]['value'])} [{_fmt(ad['kpis'][k]['ci_low'])}, {_fmt(ad['kpis'][k]['ci_high'])}]"
                 for k in _SHOWN_KPIS]
        viewers = f"{ad.get('kpi_viewers', ad['viewers_kept'])}" + (" (few)" if ad.get("small_group") else "")
        rows.append(["-" if r["rank"] is None else str(r["rank"]), ad["name"], viewers, *cells])
    heads = [f"{k}\n({_heading(ranking.get(k, {}))})" for k in _SHOWN_KPIS]
    _print_table(["rank", "ad", "viewers", *heads], rows, f"campaign {summary['campaign']}")
    typer.echo("rank: by valence index; equal values share a rank, and a rank is not a win (see the verdict). "
               "face_found_rate is data quality, never a win.")
    excluded = [q for q in summary["qc"] if q["status"] != "kept"]
    for q in excluded:
        typer.echo(f"excluded: {q['viewer']} / {q['ad']}: {q['reason']}")
    typer.echo(f"{result.analysed} recording(s) analysed, {result.from_cache} from the cache; "
               f"outputs in {result.out_dir}")
    typer.echo(f"report: {result.report}" if result.report is not None else "report: not written")


def _heading(entry: dict[str, Any]) -> str:
    """The direction of a KPI for a column heading; data-quality KPIs say they are never a win."""
    if entry.get("role") in ("quality", "attention"):
        return f"{entry['role']}, never a win"
    return _DIRECTION.get(str(entry.get("direction", "")), "?")


def _settings(sample_fps: float, threshold: float, min_face_rate: float, bootstrap: int, seed: int) -> CampaignSettings:
    from ..campaign.run import CampaignSettings

    return CampaignSettings(expressing_threshold=threshold, min_face_rate=min_face_rate, bootstrap=bootstrap,
                            seed=seed, sample_fps=sample_fps)


def _ray_options(model: str | None, detector: str, use_ray: bool, address: str | None,
                 threads: int) -> RayOptions | None:
    """Ray actors of ``threads`` threads building the engine ``_analyzer`` builds (None: no Ray)."""
    if not use_ray and address is None:
        return None
    from ..cluster.ray_batch import RayOptions, require_ray
    from ..cluster.worker import EngineSpec

    require_ray()  # a missing cluster extra is named before any work
    return RayOptions(EngineSpec(model=model, detector=detector, threads=max(1, threads)), address=address)


def _run(manifest: Path, out: Path, model: str | None, detector: str, cache_dir: Path | None,
         settings: CampaignSettings, progress: bool | None, norms: Path | None, use_norms: bool,
         annotate: bool = False, blur: bool = False, ray: RayOptions | None = None) -> None:
    from contextlib import nullcontext

    from ..campaign.manifest import load_manifest
    from ..campaign.norms import NormsStore, default_path
    from ..campaign.run import analyze_campaign

    loaded = load_manifest(manifest)  # a bad manifest fails before the model loads
    store = NormsStore.open(norms or default_path()) if use_norms else None  # so does a corrupt norms store
    with store if store is not None else nullcontext():
        analyzer = _analyzer(model, detector) if ray is None else None  # on Ray: built from ray.spec
        show = progress if progress is not None else sys.stderr.isatty()
        result = analyze_campaign(loaded, out, analyzer, settings, cache_dir=cache_dir, progress=show, norms=store,
                                  annotate=annotate, blur=blur, ray=ray)
    print_ranking(result)
    if store is not None:
        typer.echo(f"norms: {store.path} (this campaign's ads recorded)")
    failed = [q for q in result.summary["qc"] if str(q.get("reason") or "").startswith("could not be analysed")]
    if failed:  # the outputs are written, but recordings are missing from them: partial, as a job would be
        typer.echo(f"warning: partial result: {len(failed)} recording(s) could not be analysed (see excluded above)",
                   err=True)
        raise typer.Exit(PARTIAL_EXIT_CODE)


def _analyzer(model: str | None, detector: str) -> Analyzer:
    from ..inference.analyzer import Analyzer

    return Analyzer(model=model, detector=detector)


Model = Annotated[str | None, typer.Option("--model", help="ONNX file or packaged model name (emolens models)")]
Detector = Annotated[str, typer.Option("--detector", help="face detector name")]
CacheDir = Annotated[Path | None, typer.Option("--cache-dir", help="per-recording analysis cache (default OUT/cache)")]
SampleFps = Annotated[float, typer.Option("--sample-fps", help="video frames analysed per second of video")]
Threshold = Annotated[float, typer.Option("--threshold", help="probability from which a viewer 'expresses' an emotion")]
MinFace = Annotated[float, typer.Option("--min-face-rate", help="QC: least share of ad seconds with a face")]
Bootstrap = Annotated[int, typer.Option("--bootstrap", help="bootstrap resamples and permutations per CI / test")]
Seed = Annotated[int, typer.Option("--seed", help="seed of the resampling")]
Progress = Annotated[bool | None, typer.Option("--progress/--no-progress", help="progress bar (default: on a tty)")]
Norms = Annotated[Path | None, typer.Option("--norms", help="norms store (default $EMOLENS_NORMS or "
                                                          "~/.local/share/emolens/norms.sqlite)")]
Annotate = Annotated[bool, typer.Option("--annotate/--no-annotate",
                                        help="annotated H.264 video of each viewer for the report (videos/)")]
Blur = Annotated[bool, typer.Option("--blur", help="pixelate the viewers' faces in the annotated videos")]
UseNorms = Annotated[bool, typer.Option("--use-norms/--no-norms",
                                        help="compare with earlier ads and record this campaign's ads")]
UseRay = Annotated[bool, typer.Option("--ray", help="analyse the recordings on a local Ray (cluster extra)")]
RayAddress = Annotated[str | None, typer.Option(
    "--ray-address", help="... or on this Ray cluster (e.g. ray://head:10001; implies --ray)")]
Threads = Annotated[int, typer.Option("--threads", min=0,
                                      help="with --ray: ONNX Runtime threads (and Ray CPUs) per actor (0 = one)")]


def register(app: typer.Typer) -> None:
    """Add the ``campaign`` command group (``analyze``, ``demo``) to ``app``."""
    group = typer.Typer(help="Ad campaigns: how viewers' faces react to ads, second by second.",
                        no_args_is_help=True)

    @group.command("analyze")
    def analyze(
        manifest: Annotated[Path, typer.Argument(help="campaign manifest (.yaml, .yml or .csv)")],
        out: Annotated[Path, typer.Option("--out", help="output folder")],
        model: Model = None, detector: Detector = "auto", cache_dir: CacheDir = None, sample_fps: SampleFps = 5.0,
        threshold: Threshold = 0.5, min_face_rate: MinFace = 0.5, bootstrap: Bootstrap = 2000, seed: Seed = 0,
        progress: Progress = None, norms: Norms = None, use_norms: UseNorms = True, annotate: Annotate = False,
        blur: Blur = False, use_ray: UseRay = False, ray_address: RayAddress = None, threads: Threads = 0,
    ) -> None:
        """Analyse every recording of a campaign; write tables, summary.json and report.html into --out."""
        settings = _settings(sample_fps, threshold, min_face_rate, bootstrap, seed)
        ray = _ray_options(model, detector, use_ray, ray_address, threads)
        _run(manifest, out, model, detector, cache_dir, settings, progress, norms, use_norms, annotate, blur, ray)

    @group.command("demo")
    def demo(
        out: Annotated[Path, typer.Option("--out", help="output folder (recordings, manifest, results)")],
        media: Annotated[Path | None, typer.Option("--media", help="media (default ../shared/data/media)")] = None,
        model: Model = None, detector: Detector = "auto", sample_fps: SampleFps = 5.0, bootstrap: Bootstrap = 2000,
        seed: Seed = 0, progress: Progress = None, norms: Norms = None, use_norms: UseNorms = False,
        annotate: Annotate = True, blur: Blur = False,
    ) -> None:
        """Build a demo campaign from the shared media clips, then analyse it (norms off by default:
        a demo is not a real ad)."""
        from ..campaign.demo import build_demo

        manifest = build_demo(media or default_media_dir(), out)
        typer.echo(f"demo manifest: {manifest}")
        settings = _settings(sample_fps, 0.5, 0.5, bootstrap, seed)
        _run(manifest, out, model, detector, None, settings, progress, norms, use_norms, annotate, blur)

    app.add_typer(group, name="campaign")

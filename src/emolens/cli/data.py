"""CLI commands: ``emolens data stats PATH`` (a thin shell over :func:`emolens.data.stats.dataset_stats`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from ..data.stats import DatasetStats

data_app = typer.Typer(help="Inspect datasets: counts, sizes, imbalance, duplicates.", no_args_is_help=True)


@data_app.command("stats")
def stats_command(
    path: Annotated[str, typer.Argument(help="FER2013 CSV (.csv / .csv.gz) or an image-folder root.")],
    dataset: Annotated[
        str | None, typer.Option(help="fer2013 | ferplus | folder (default: detected from PATH).")
    ] = None,
    labels: Annotated[
        str, typer.Option(help="FER+ votes file fer2013new.csv (implies --dataset ferplus).")
    ] = "",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip and count bad samples.")] = False,
    val_fraction: Annotated[
        float, typer.Option(help="Val/test fraction made from train when missing.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the splits made from train.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts per class and split, image sizes, class imbalance, duplicates across splits, skipped rows."""
    from ..data.stats import dataset_stats

    result = dataset_stats(
        path, dataset=dataset, labels_path=labels, skip_bad=skip_bad, val_fraction=val_fraction, seed=seed
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_tables(result)


def _print_tables(result: DatasetStats) -> None:
    from rich.console import Console

    console = Console()
    console.print(_counts_table(result))
    console.print(_split_table(result))
    if result.cross_duplicates:
        pairs = ", ".join(f"{k}: {v}" for k, v in result.cross_duplicates.items())
        console.print(f"pixel-identical across splits: {pairs}")
    if result.skipped:
        console.print("skipped: " + ", ".join(f"{k}: {v}" for k, v in result.skipped.items()))


def _counts_table(result: DatasetStats) -> Table:
    from rich.table import Table

    table = Table(title=f"{result.dataset}: {result.path}  ({result.total} images)")
    table.add_column("class")
    for s in result.splits:
        table.add_column(s.name, justify="right")
    table.add_column("total", justify="right")
    for label in result.labels:
        row = [s.per_class[label] for s in result.splits]
        table.add_row(label, *map(str, row), str(sum(row)))
    table.add_row("total", *(str(s.count) for s in result.splits), str(result.total), style="bold")
    return table


def _split_table(result: DatasetStats) -> Table:
    from rich.table import Table

    table = Table(title="per split")
    for col in ("split", "image sizes", "channels", "imbalance (max/min)", "mean / std",
                "duplicate groups (images)", "made from"):  # fmt: skip
        table.add_column(col)
    for s in result.splits:
        sizes = ", ".join(f"{k}: {v}" for k, v in list(s.image_sizes.items())[:4])
        if len(s.image_sizes) > 4:
            sizes += f", ... ({len(s.image_sizes)} sizes)"
        empty = ", ".join(s.empty_classes)
        imbalance = f"{s.imbalance:.1f}" if s.imbalance is not None else f"inf (empty: {empty})"
        channels = ", ".join(f"{k}: {v}" for k, v in s.channels.items())
        table.add_row(s.name, sizes, channels, imbalance, f"{s.mean:.1f} / {s.std:.1f}",
                      f"{s.duplicate_groups} ({s.duplicate_images})", s.derived or "-")  # fmt: skip
    return table


def register(app: typer.Typer) -> None:
    """Add the ``data`` sub-app (``emolens data stats``) to the app."""
    app.add_typer(data_app, name="data")

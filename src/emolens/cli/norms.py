"""CLI commands ``emolens norms list|export|import|remove``: the local store of earlier ads' KPIs.

A thin shell over :class:`emolens.campaign.norms.NormsStore`. Every command takes ``--db PATH``
(default ``$EMOLENS_NORMS`` or ``~/.local/share/emolens/norms.sqlite``); a file that is not a norms
store fails with exit code 5 and its name, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidInput

_SHOWN = ("valence_index", "positive_share", "expressiveness")

Db = Annotated[Path | None, typer.Option("--db", help="norms store (default $EMOLENS_NORMS or "
                                                     "~/.local/share/emolens/norms.sqlite)")]


def _path(db: Path | None) -> Path:
    from ..campaign.norms import default_path

    return db if db is not None else default_path()


def _existing(db: Path | None) -> Path | None:
    """The store's path when the file exists (reading commands never create one), else None."""
    path = _path(db)
    if path.exists():
        return path
    typer.echo(f"no norms store at {path} yet (campaign analyze creates it)", err=True)
    return None


def register(app: typer.Typer) -> None:
    """Add the ``norms`` command group to ``app``."""
    group = typer.Typer(help="Norms: KPIs of earlier ads, per model, for percentiles in campaign reports.",
                        no_args_is_help=True)

    @group.command("list")
    def list_(db: Db = None,
              model: Annotated[str | None, typer.Option("--model", help="only this model name or id")] = None) -> None:
        """The stored ads, oldest first, with their headline KPIs."""
        from rich.console import Console
        from rich.table import Table

        from ..campaign.norms import NormsStore

        path = _existing(db)
        if path is None:
            return
        with NormsStore.open(path) as store:
            rows = store.rows(model)
        table = Table(title=f"{len(rows)} ad(s) in {_path(db)}")
        for col in ("campaign", "ad", "analysed", "model id", "viewers", *_SHOWN):
            table.add_column(col, no_wrap=True)
        for r in rows:
            table.add_row(r["campaign"], r["ad"], r["analysed_at"][:19], r["model_id"], str(r["viewers"]),
                          *("-" if (v := r["kpis"].get(k)) is None else f"{v:.3f}" for k in _SHOWN))
        Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160, highlight=False).print(table)

    @group.command("export")
    def export(out: Annotated[Path, typer.Argument(help="file to write: .csv or .json")], db: Db = None) -> None:
        """Write every stored ad to a CSV or JSON file (which `norms import` reads back)."""
        from ..campaign.norms import NormsStore

        if out.suffix.lower() not in (".csv", ".json"):
            raise InvalidInput(f"{out}: give a .csv or .json file to export to")
        path = _existing(db)
        if path is None:
            raise InvalidInput(f"nothing to export: no norms store at {_path(db)}")
        with NormsStore.open(path) as store:
            n = store.export(out)
        typer.echo(f"exported {n} ad(s) to {out}")

    @group.command("import")
    def import_(file: Annotated[Path, typer.Argument(help="a file written by `emolens norms export`")],
                db: Db = None) -> None:
        """Add the ads of an export file (rows for the same campaign, ad and model are replaced)."""
        from ..campaign.norms import NormsStore

        with NormsStore.open(_path(db)) as store:
            n = store.import_file(file)
        typer.echo(f"imported {n} ad(s) into {_path(db)}")

    @group.command("remove")
    def remove(
        campaign: Annotated[str, typer.Option("--campaign", help="campaign whose ads are removed")],
        ad: Annotated[str | None, typer.Option("--ad", help="only this ad")] = None,
        model: Annotated[str | None, typer.Option("--model", help="only this model name or id")] = None,
        db: Db = None,
    ) -> None:
        """Remove a campaign's ads (or one ad) from the norms."""
        from ..campaign.norms import NormsStore

        path = _existing(db)
        if path is None:
            typer.echo("removed 0 ad(s)")
            return
        with NormsStore.open(path) as store:
            n = store.remove(campaign, ad, model)
        typer.echo(f"removed {n} ad(s)")

    app.add_typer(group, name="norms")

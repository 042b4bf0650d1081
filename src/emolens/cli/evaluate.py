"""``emolens evaluate`` (score a model on a dataset split) and ``emolens compare`` (runs side by side)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

# Tables go to pipes and files at this width instead of rich's 80 columns (terminals use their own).
_PIPE_WIDTH = 160
_TEXT_COLUMNS = {"arch", "dataset"}


def _print_table(columns: list[str], rows: list[list[str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 or col in _TEXT_COLUMNS else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    width = None if sys.stdout.isatty() else _PIPE_WIDTH
    console = Console(file=sys.stdout, width=width, highlight=False, emoji=False)
    console.print(title, soft_wrap=True, markup=False)
    console.print(table)


def _fmt(x: Any, digits: int = 4) -> str:
    return "" if x is None else f"{float(x):.{digits}f}"


def _summary_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per-class precision/recall/F1/support, then the overall figures (with TTA alongside when run)."""
    tta = report.get("tta")
    columns = ["class", "precision", "recall", "F1", "support", "AUC"] + (["F1 (TTA)"] if tta else [])
    rows = []
    for label in report["labels"]:
        pc = report["per_class"][label]
        row = [label, _fmt(pc["precision"]), _fmt(pc["recall"]), _fmt(pc["f1"]), str(pc["support"]),
               _fmt(report["roc_auc"].get(label))]
        rows.append(row + ([_fmt(tta["per_class"][label]["f1"])] if tta else []))
    for key, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("weighted_f1", "weighted-F1"),
                      ("ece", "ECE"), ("nll", "NLL")):
        value = _fmt(report[key])
        rows.append([name, "", "", value, "", ""] + ([_fmt(tta[key])] if tta else []))
    return columns, rows


def evaluate_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A .pt checkpoint or an .onnx model.")],
    data: Annotated[str, typer.Option(help="Dataset path: FER2013 csv(.gz) or an image-folder root.")],
    dataset: Annotated[str, typer.Option(help="fer2013 | ferplus | folder")],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and the figures.")],
    labels: Annotated[str, typer.Option(help="FER+ votes file (fer2013new.csv) for --dataset ferplus.")] = "",
    split: Annotated[str, typer.Option(help="train | val | test (or PublicTest / PrivateTest).")] = "test",
    tta: Annotated[bool, typer.Option("--tta", help="Also score the mean with mirrored images.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per inference batch.")] = 256,
    exclude_train_duplicates: Annotated[bool, typer.Option(
        "--exclude-train-duplicates", help="Drop rows pixel-identical to a training image (counted).",
    )] = False,
    device: Annotated[str, typer.Option(help="cpu | cuda (checkpoints only).")] = "cpu",
    ferplus_rows: Annotated[str, typer.Option(
        help="FER+ val/test rows: majority (Microsoft's protocol: top emotion > half the votes left) | "
             "plurality (every row with one top emotion, ambiguous faces included).")] = "majority",
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json instead of the table.")] = False,
) -> None:
    """Evaluate a model on a dataset split; writes metrics.json, confusion_matrix.png, roc.png and
    reliability.png (plus tta_* figures with --tta) into --out."""
    from ..evaluation.runner import evaluate_model

    report = evaluate_model(model, dataset, data, out, split=split, labels_path=labels, tta=tta,
                            batch_size=batch_size, exclude_train_duplicates=exclude_train_duplicates,
                            device=device, ferplus_rows=ferplus_rows)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    columns, rows = _summary_rows(report)
    title = (f"{report['model']['architecture']} on {report['dataset']} / {report['split']} "
             f"({report['n']} images)")
    if "ferplus_rows" in report:
        title += f", {report['ferplus_rows']} rows"
    if "excluded_train_duplicates" in report:
        title += f", {report['excluded_train_duplicates']} train duplicates excluded"
    _print_table(columns, rows, title)
    typer.echo(f"wrote {Path(out) / 'metrics.json'} and figures")


def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (each with config.yaml and history.csv).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    params: Annotated[bool, typer.Option(help="Count parameters from checkpoints if metrics.json lacks them.")
                      ] = True,
) -> None:
    """Compare training runs: arch, dataset, epochs, best val accuracy, test accuracy and macro-F1,
    parameters and training time. Unreadable folders are reported and skipped."""
    from ..evaluation.compare import compare_runs, table_rows

    summaries, problems = compare_runs(runs, count_params=params)
    for run, problem in problems.items():
        typer.echo(f"skipped {run}: {problem}", err=True)
    if as_json:
        sys.stdout.write(json.dumps({"runs": [s.to_dict() for s in summaries], "skipped": problems}, indent=2)
                         + "\n")
        return
    columns, rows = table_rows(summaries)
    _print_table(columns, rows, f"{len(summaries)} run(s)")


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``compare`` to the app."""
    app.command("evaluate")(evaluate_command)
    app.command("compare")(compare_command)

"""Re-derive the model card's accuracy table from the shipped ONNX files alone (no checkpoints, no torch).

For each shipped emotion model (``src/emolens/assets/models.json``; entries whose task is not
``emotion`` are skipped) on its own test set:

- ``fer7``-style models (``dataset: fer2013``): FER2013 PrivateTest (3,589 rows);
- ``ferplus8``-style models (``dataset: ferplus``): the PrivateTest rows with a FER+ vote majority, as
  Microsoft's FERPlus code scores them (:mod:`emolens.data.ferplus`: single votes dropped, the top
  emotion holding more than half of the votes left; 3,153 rows), and beside them, not instead, every
  row with one top emotion (3,376 rows, ambiguous faces included);

it prints single-crop accuracy against the issue's target, flip-TTA accuracy (separately), macro-F1,
per-class recall (disgust and contempt called out), ECE (15 bins) and NLL before and after temperature
scaling (the temperature is fitted on the validation split, PublicTest, never on test), and accuracy
with the test rows that are pixel-identical to a Training image removed (found by pixel hash at the
model's input size, as ``emolens evaluate --exclude-train-duplicates`` does). Everything goes through
the library (``emolens.evaluation``, ``emolens.data``, ``emolens.inference``), so the numbers are the
ones ``emolens evaluate`` gives on the same files. Classifier speed is ``bench/engine_speed.py``'s job.

    .venv/bin/python bench/accuracy.py                                   # all shipped emotion models
    .venv/bin/python bench/accuracy.py --models fer7 --limit 300         # a fast check
    .venv/bin/python bench/accuracy.py --json acc.json --figures docs/models

Exit status: 0 on success, 2 (one line on stderr) when the data or a model is missing or unusable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emolens.config import DataConfig
from emolens.errors import DatasetError, EmolensError, InvalidInput
from emolens.evaluation.metrics import (
    ECE_BINS,
    apply_temperature,
    compute_metrics,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
)
from emolens.evaluation.plots import plot_confusion_matrix
from emolens.evaluation.predict import OnnxPredictor, predict_batched, predict_with_tta
from emolens.evaluation.runner import load_dataset_for_model, select_split, train_duplicate_mask
from emolens.inference.shipped import list_shipped, resolve_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data"
CALLED_OUT = ("disgust", "contempt")


@dataclass(frozen=True)
class Protocol:
    """Where a model's test and validation rows come from, and issue 11's musts on its test set: accuracy,
    macro-F1, the lowest recall of any class (or of ``rare`` classes only), every class predicted, and
    ECE after temperature scaling."""

    test: str
    val: str
    must_reach: float
    aim: float
    macro_f1: float | None = None
    min_recall: float = 0.0
    rare: tuple[str, ...] = ()  # empty: the recall floor holds for every class
    max_ece: float = 0.03


PROTOCOLS = {
    "fer2013": Protocol("FER2013 PrivateTest", "FER2013 PublicTest", 0.71, 0.74, macro_f1=0.66, min_recall=0.35),
    "ferplus": Protocol("FER+ PrivateTest rows with a vote majority (Microsoft's protocol)",
                        "FER+ PublicTest rows with a vote majority", 0.85, 0.88,
                        min_recall=0.25, rare=("disgust", "contempt")),
}


def check_musts(proto: Protocol, m: dict[str, Any], ece_shipped: float) -> dict[str, bool]:
    """Each of the issue's musts for this test set, met or not."""
    recall = {k: v["recall"] for k, v in m["per_class"].items()}
    floor_on = [k for k in recall if not proto.rare or k in proto.rare]
    predicted = np.asarray(m["confusion_matrix"]).sum(axis=0)
    musts = {f"accuracy >= {proto.must_reach:.2f}": m["accuracy"] >= proto.must_reach}
    if proto.macro_f1 is not None:
        musts[f"macro-F1 >= {proto.macro_f1:.2f}"] = m["macro_f1"] >= proto.macro_f1
    who = "every class" if not proto.rare else "/".join(proto.rare)
    musts[f"{who} recall >= {proto.min_recall:.2f}"] = all(recall[k] >= proto.min_recall for k in floor_on)
    musts["every class predicted"] = bool((predicted > 0).all())
    musts[f"ECE as shipped <= {proto.max_ece:.2f}"] = ece_shipped <= proto.max_ece
    return musts


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path


# ------------------------------------------------------------------ inputs


def data_files(root: Path, dataset: str) -> tuple[Path, Path | None]:
    """The FER2013 CSV (``.csv.gz`` or ``.csv``) under ``root/fer2013`` and, for ``ferplus``, the votes
    file ``root/ferplus/fer2013new.csv``. Raises DatasetError naming what is missing."""
    candidates = [root / "fer2013" / "fer2013.csv.gz", root / "fer2013" / "fer2013.csv"]
    csv = next((c for c in candidates if c.is_file()), None)
    if csv is None:
        raise DatasetError(f"FER2013 data missing: neither {candidates[0]} nor {candidates[1]} exists "
                           "(set --data-root or $EMOLENS_SHARED)")
    if dataset != "ferplus":
        return csv, None
    votes = root / "ferplus" / "fer2013new.csv"
    if not votes.is_file():
        raise DatasetError(f"FER+ votes missing: {votes} does not exist (set --data-root or $EMOLENS_SHARED)")
    return csv, votes


def pick_models(spec: str | None) -> list[ModelSpec]:
    """``None``: every shipped emotion model. Otherwise a comma list of shipped names or ONNX paths."""
    if spec is None:
        found = [ModelSpec(m.name, m.path) for m in list_shipped() if m.meta.task == "emotion"]
        if not found:
            raise InvalidInput("no shipped emotion model in models.json")
        return found
    shipped = {m.name: m.path for m in list_shipped()}
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if item:
            path = shipped.get(item) or resolve_model(item)
            out.append(ModelSpec(item if item in shipped else Path(item).stem, Path(path)))
    if not out:
        raise InvalidInput(f"--models {spec!r} names no model")
    return out


# ------------------------------------------------------------------ evaluation


def _shown(path: Path) -> str:
    """The path relative to the repository when it is inside it (stable in reports), else absolute."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _head(n: int, limit: int) -> slice:
    return slice(0, min(n, limit) if limit > 0 else n)


def _calibration(probs: np.ndarray, y: np.ndarray, val_probs: np.ndarray, val_y: np.ndarray,
                 ) -> tuple[dict[str, float], np.ndarray]:
    """ECE and NLL on test before and after a temperature fitted on the validation predictions."""
    t = fit_temperature(val_probs, val_y, kind="probs")
    scaled = apply_temperature(probs, t, kind="probs")
    return {
        "temperature": t,
        "ece": expected_calibration_error(y, probs),
        "nll": negative_log_likelihood(y, probs),
        "ece_ts": expected_calibration_error(y, scaled),
        "nll_ts": negative_log_likelihood(y, scaled),
    }, scaled


def evaluate(spec: ModelSpec, data_root: Path, limit: int = 0, batch_size: int = 256,
             ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score one ONNX model on its test set; returns the JSON-ready report and the arrays the figures
    need (``y``, ``probs``, ``probs_ts``). ``limit`` keeps the first N rows of test and of validation."""
    predictor = OnnxPredictor(spec.path)
    meta = predictor.meta
    proto = PROTOCOLS.get(meta.dataset)
    if proto is None:
        raise InvalidInput(f"{spec.path}: trained on dataset {meta.dataset!r}; this bench knows "
                           f"{', '.join(PROTOCOLS)}")
    csv, votes = data_files(data_root, meta.dataset)
    ds = load_dataset_for_model(meta, meta.dataset, csv, votes or "")
    test, val = select_split(ds, meta, "test"), select_split(ds, meta, "val")
    images, y = test.images[_head(len(test.y), limit)], test.y[_head(len(test.y), limit)]
    val_images, val_y = val.images[_head(len(val.y), limit)], val.y[_head(len(val.y), limit)]
    dup = train_duplicate_mask(images, ds.split("train").images)

    probs, tta = predict_with_tta(predictor, images, batch_size)
    val_probs = predict_batched(predictor, val_images, batch_size)
    m = compute_metrics(y, probs, meta.labels)
    m_tta = compute_metrics(y, tta, meta.labels)
    # The shipped file may carry a temperature (emolens calibrate): score calibration from the raw
    # logits' softmax (T = 1), as served (stored T) and after a fresh fit on validation.
    stored_t = predictor.model.temperature
    raw, val_raw = (apply_temperature(p, 1.0 / stored_t, kind="probs") for p in (probs, val_probs))
    calib, scaled = _calibration(raw, y, val_raw, val_y)
    calib.update({"temperature_shipped": stored_t, "ece_shipped": expected_calibration_error(y, probs),
                  "nll_shipped": negative_log_likelihood(y, probs)})
    probs = raw if stored_t != 1.0 else probs
    m_dedup = compute_metrics(y[~dup], probs[~dup], meta.labels) if (~dup).any() else None
    harder = None
    if meta.dataset == "ferplus":  # beside the protocol's rows: every row with one top emotion (ambiguous ones too)
        plural = select_split(load_dataset_for_model(meta, meta.dataset, csv, votes or "",
                                                     base=DataConfig(ferplus_eval_rows="plurality")), meta, "test")
        p_y = plural.y[_head(len(plural.y), limit)]
        m_plural = compute_metrics(p_y, predict_batched(predictor, plural.images[_head(len(plural.y), limit)],
                                                        batch_size), meta.labels)
        harder = {"rows": "plurality", "n": m_plural["n"], "accuracy": m_plural["accuracy"],
                  "macro_f1": m_plural["macro_f1"]}

    report: dict[str, Any] = {
        "model": spec.name, "file": _shown(spec.path), "file_bytes": spec.path.stat().st_size,
        "architecture": meta.architecture, "dataset": meta.dataset, "labels": list(meta.labels),
        "quantization": (meta.extra.get("quantization") or {}).get("mode", "none"),
        "test_split": proto.test, "n": m["n"], "val_split": proto.val, "val_n": len(val_y), "limit": limit,
        "accuracy": m["accuracy"], "accuracy_tta": m_tta["accuracy"],
        "macro_f1": m["macro_f1"], "macro_f1_tta": m_tta["macro_f1"],
        "per_class_recall": {k: v["recall"] for k, v in m["per_class"].items()},
        "support": {k: v["support"] for k, v in m["per_class"].items()},
        "confusion_matrix": m["confusion_matrix"],
        "calibration": {**calib, "bins": ECE_BINS, "fitted_on": proto.val},
        "train_duplicates": {
            "removed": int(dup.sum()), "n": int((~dup).sum()),
            "accuracy": None if m_dedup is None else m_dedup["accuracy"],
            "macro_f1": None if m_dedup is None else m_dedup["macro_f1"],
        },
        "plurality_rows": harder,
        "target": {"must_reach": proto.must_reach, "aim": proto.aim, "gap": m["accuracy"] - proto.must_reach},
        "musts": check_musts(proto, m, calib["ece_shipped"]),
    }
    return report, {"y": y, "probs": probs, "probs_ts": scaled}


# ------------------------------------------------------------------ figures


def plot_reliability_pair(y: np.ndarray, probs: np.ndarray, scaled: np.ndarray, calib: dict[str, float],
                          path: Path, title: str) -> Path:
    """Reliability diagrams side by side: before and after temperature scaling."""
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    edges = np.linspace(0, 1, ECE_BINS + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    panels = ((probs, f"before (T = 1): ECE {calib['ece']:.3f}, NLL {calib['nll']:.3f}"),
              (scaled, f"after (T = {calib['temperature']:.3f}): ECE {calib['ece_ts']:.3f}, "
                       f"NLL {calib['nll_ts']:.3f}"))
    for ax, (p, label) in zip(fig.subplots(1, 2, sharey=True), panels, strict=True):
        bins = reliability_bins(y, p, ECE_BINS)
        acc = np.nan_to_num(np.asarray(bins["accuracy"]), nan=0.0)
        conf = np.asarray(bins["confidence"])
        ax.bar(centers, acc, width=1 / ECE_BINS, edgecolor="black", alpha=0.7, label="accuracy")
        ax.plot(conf, np.asarray(bins["accuracy"]), "o", color="C3", ms=3,
                label="accuracy at the bin's mean confidence")
        ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=0.8, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max probability)")
        ax.set_title(label, fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    fig.axes[0].set_ylabel("accuracy")
    fig.suptitle(textwrap.fill(title, 110))  # long split names wrap instead of running off the figure
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def write_figures(report: dict[str, Any], arrays: dict[str, np.ndarray], out: Path) -> list[Path]:
    """``<model>_confusion.png`` (counts and row-normalised %) and ``<model>_reliability.png``."""
    name, where = report["model"], f"{report['test_split']}, n={report['n']}"
    return [
        plot_confusion_matrix(report["confusion_matrix"], report["labels"], out / f"{name}_confusion.png",
                              title=f"{name} on {where}: accuracy {report['accuracy']:.4f}"),
        plot_reliability_pair(arrays["y"], arrays["probs"], arrays["probs_ts"], report["calibration"],
                              out / f"{name}_reliability.png",
                              f"{name} on {where}; temperature fitted on {report['val_split']}"),
    ]


# ------------------------------------------------------------------ output


def format_report(r: dict[str, Any]) -> str:
    """The human-readable block for one model."""
    c, d, t = r["calibration"], r["train_duplicates"], r["target"]
    recalls = "  ".join(f"{k} {v:.3f}" for k, v in r["per_class_recall"].items())
    called = [f"{k} {r['per_class_recall'][k]:.3f} ({r['support'][k]} rows)" for k in CALLED_OUT
              if k in r["per_class_recall"]]
    dedup = "n/a (every row is a duplicate)" if d["accuracy"] is None else f"{d['accuracy']:.4f}"
    lines = [
        f"{r['model']}: {r['file']} ({r['file_bytes']:,} bytes, {r['architecture']}, "
        f"quantization {r['quantization']})",
        f"  test: {r['test_split']}, n={r['n']}; temperature fitted on {r['val_split']}, n={r['val_n']}"
        + (f"  [--limit {r['limit']}]" if r["limit"] else ""),
        f"  accuracy, single crop        {r['accuracy']:.4f}   target {t['must_reach']:.2f} (aim {t['aim']:.2f}), "
        f"gap {100 * t['gap']:+.2f} points",
        f"  accuracy, flip TTA           {r['accuracy_tta']:.4f}",
        f"  macro-F1 (single / TTA)      {r['macro_f1']:.4f} / {r['macro_f1_tta']:.4f}",
        f"  ECE, {c['bins']} bins (T=1/fit)   {c['ece']:.4f} / {c['ece_ts']:.4f}   fitted T = {c['temperature']:.4f}",
        f"  NLL (T=1/fit)                {c['nll']:.4f} / {c['nll_ts']:.4f}",
        f"  as shipped (T = {c['temperature_shipped']:.4f})   ECE {c['ece_shipped']:.4f}, NLL {c['nll_shipped']:.4f}",
        f"  accuracy w/o train dups      {dedup}   ({d['removed']} test rows pixel-identical to a Training "
        f"image removed, n={d['n']})",
        f"  recall: {recalls}",
        "  musts: " + "; ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in r["musts"].items()),
    ]
    if called:
        lines.append("  rare classes: " + "; ".join(called))
    if r.get("plurality_rows"):
        h = r["plurality_rows"]
        lines.append(f"  beside (not the protocol): every PrivateTest row with one top emotion, ambiguous faces "
                     f"included, n={h['n']}: accuracy {h['accuracy']:.4f}, macro-F1 {h['macro_f1']:.4f}")
    return "\n".join(lines)


def format_table(reports: Sequence[dict[str, Any]]) -> str:
    """One line per model: the model card's table."""
    w = max([10, *(len(r["model"]) for r in reports)])
    head = (f"{'model':<{w}} {'test set':<38} {'n':>5} {'target':>6} {'acc':>7} {'gap pts':>7} {'acc TTA':>7} "
            f"{'mF1':>6} {'ECE':>6} {'ECE T':>6} {'ECE sh':>6} {'acc-dup':>7} {'dups':>4}")
    rows = [head, "-" * len(head)]
    for r in reports:
        c, d = r["calibration"], r["train_duplicates"]
        dedup = "n/a" if d["accuracy"] is None else f"{d['accuracy']:.4f}"
        rows.append(f"{r['model']:<{w}} {r['test_split']:<38} {r['n']:>5} {r['target']['must_reach']:>6.2f} "
                    f"{r['accuracy']:>7.4f} {100 * r['target']['gap']:>+7.2f} {r['accuracy_tta']:>7.4f} "
                    f"{r['macro_f1']:>6.4f} {c['ece']:>6.4f} {c['ece_ts']:>6.4f} {c['ece_shipped']:>6.4f} {dedup:>7} "
                    f"{d['removed']:>4}")
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA,
                   help=f"folder holding fer2013/ and ferplus/ (default: {DEFAULT_DATA})")
    p.add_argument("--models", default=None,
                   help="comma list of shipped model names or .onnx files (default: every shipped emotion model)")
    p.add_argument("--limit", type=int, default=0,
                   help="score only the first N test rows (and fit T on the first N validation rows); 0 = all")
    p.add_argument("--batch-size", type=int, default=256, help="images per ONNX Runtime call")
    p.add_argument("--json", type=Path, default=None, help="also write the reports as JSON here")
    p.add_argument("--figures", type=Path, default=None,
                   help="write <model>_confusion.png and <model>_reliability.png into this folder")
    args = p.parse_args(argv)
    if args.limit < 0 or args.batch_size < 1:
        p.error("--limit must be >= 0 and --batch-size >= 1")
    return args


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Evaluate every selected model, print its block, write figures; returns the reports."""
    reports = []
    for spec in pick_models(args.models):
        report, arrays = evaluate(spec, args.data_root, args.limit, args.batch_size)
        print(format_report(report) + "\n", flush=True)
        if args.figures is not None:
            for path in write_figures(report, arrays, args.figures):
                print(f"  wrote {path}")
        reports.append(report)
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data_root.is_dir():
        print(f"error: data root {args.data_root} not found (set --data-root or $EMOLENS_SHARED)", file=sys.stderr)
        return 2
    try:
        reports = run(args)
    except EmolensError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    print(format_table(reports))
    print("classifier throughput: see bench/engine_speed.py")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"models": reports}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

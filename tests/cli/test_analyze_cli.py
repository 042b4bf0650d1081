"""``emolens analyze``: input expansion, output formats, annotation, bad input, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolens.cli import main
from emolens.cli.analyze import IMAGE_EXTENSIONS, annotation_names, collect_inputs
from emolens.cli.output import CSV_FACE_COLUMNS, make_writer
from emolens.errors import InvalidInput
from emolens.inference.summary import summarize
from emolens.labels import FER7
from emolens.results import FaceResult, ImageResult

from ..inference.badinputs import Case, corpus
from ..inference.modelfactory import make_model, tiny_meta


def _face(emotion, box=(1, 2, 30, 40)):
    probs = {lb: (0.7 if lb == emotion else 0.05) for lb in FER7}
    return FaceResult(box=box, detection_score=0.875, emotion=emotion, probabilities=probs)


RESULTS = [
    ImageResult(
        source="a.jpg", width=64, height=48, faces=(_face("happiness"), _face("anger", (5, 6, 7, 8)))
    ),
    ImageResult(source="dir,with comma/b[1].png", width=10, height=10, faces=()),
]


def _write(fmt):
    buf = io.StringIO()
    w = make_writer(fmt, buf)
    w.start(FER7)
    for r in RESULTS:
        w.image(r)
    w.error("c.jpg", InvalidInput("c.jpg is broken"))
    w.finish(summarize(RESULTS, FER7))
    return buf.getvalue()


# ---------------------------------------------------------------- output formats (hand-built results)


def test_jsonl_one_parsable_line_per_image():
    lines = _write("jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in RESULTS]


def test_json_document_holds_images_summary_errors():
    doc = json.loads(_write("json"))
    assert doc["images"] == [r.to_dict() for r in RESULTS]
    assert doc["summary"]["faces"] == 2 and doc["summary"]["counts"]["happiness"] == 1
    assert doc["errors"] == [{"source": "c.jpg", "error": "InvalidInput", "message": "c.jpg is broken"}]


def test_json_document_without_images_is_valid():
    buf = io.StringIO()
    w = make_writer("json", buf)
    w.start(FER7)
    w.finish(summarize([], FER7))
    assert json.loads(buf.getvalue())["images"] == []


def test_csv_one_row_per_face_and_one_for_faceless_images():
    rows = list(csv.DictReader(io.StringIO(_write("csv"))))
    assert list(rows[0]) == [*CSV_FACE_COLUMNS, *FER7]
    assert len(rows) == 3
    assert rows[0]["source"] == "a.jpg" and rows[0]["face"] == "0" and rows[0]["emotion"] == "happiness"
    assert (rows[1]["x"], rows[1]["y"], rows[1]["w"], rows[1]["h"]) == ("5", "6", "7", "8")
    assert float(rows[1]["anger"]) == pytest.approx(0.7)
    assert float(rows[0]["detection_score"]) == pytest.approx(0.875)
    assert rows[2]["source"] == "dir,with comma/b[1].png"
    assert all(rows[2][c] == "" for c in [*CSV_FACE_COLUMNS[1:], *FER7])


def test_csv_carries_roll_and_keypoints_when_a_keypoint_model_ran():
    probs = {lb: (1.0 if lb == "sadness" else 0.0) for lb in FER7}
    face = FaceResult(box=(1, 2, 30, 40), detection_score=0.5, emotion="sadness", probabilities=probs,
                      keypoints={"left_eye_center": (20.25, 10.0), "right_eye_center": (8.0, 11.5)}, roll=-7.125)
    buf = io.StringIO()
    w = make_writer("csv", buf)
    w.start(FER7)
    w.image(ImageResult("k.jpg", 40, 50, (face,)))
    (row,) = csv.DictReader(io.StringIO(buf.getvalue()))
    assert row["roll"] == "-7.12" or row["roll"] == "-7.13"
    assert json.loads(row["keypoints"]) == {"left_eye_center": [20.25, 10.0], "right_eye_center": [8.0, 11.5]}
    assert float(row["sadness"]) == 1.0


def test_table_has_faces_and_summary(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = _write("table")
    assert "a.jpg (64x48): 2 faces" in out and "happiness" in out and "70%" in out
    assert "dir,with comma/b[1].png (10x10): no face found" in out
    assert "Summary: 2 face(s) in 2 image(s), 1 without faces, 1 unreadable" in out


def test_unknown_format_is_invalid_input():
    with pytest.raises(InvalidInput, match="unknown output format"):
        make_writer("xml", io.StringIO())


# ---------------------------------------------------------------- input expansion


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture()
def tree(tmp_path):
    rels = ("b.jpg", "a.PNG", "notes.txt", "sub/c.jpeg", "sub/deeper/d.webp", ".hidden/e.jpg", "sub/.f.jpg")
    for rel in rels:
        _touch(tmp_path / rel)
    return tmp_path


def _names(files, root):
    return [f.relative_to(root).as_posix() for f in files]


def test_folder_recursive_sorted_images_only(tree):
    files, unmatched = collect_inputs([str(tree)])
    assert _names(files, tree) == ["a.PNG", "b.jpg", "sub/c.jpeg", "sub/deeper/d.webp"]
    assert unmatched == []


def test_folder_not_recursive(tree):
    files, _ = collect_inputs([str(tree)], recursive=False)
    assert _names(files, tree) == ["a.PNG", "b.jpg"]


def test_globs_files_order_and_dedup(tree):
    files, unmatched = collect_inputs(
        [str(tree / "sub" / "c.jpeg"), str(tree / "*"), str(tree / "**" / "*.webp"), str(tree / "zz*.jpg")]
    )
    assert _names(files, tree) == ["sub/c.jpeg", "a.PNG", "b.jpg", "sub/deeper/d.webp"]
    assert unmatched == [str(tree / "zz*.jpg")]


def test_explicit_file_kept_whatever_its_extension(tree):
    files, unmatched = collect_inputs([str(tree / "notes.txt"), str(tree / "missing.jpg")])
    assert _names(files, tree) == ["notes.txt"]
    assert unmatched == [str(tree / "missing.jpg")]


def test_annotation_names_resolve_clashes():
    files = [Path(p) for p in ("x/a.jpg", "y/a.jpg", "x/a.jpeg", "x/a_2.jpg", "p/q.png", "r.tif")]
    assert annotation_names(files) == ["a.jpg", "a_3.jpg", "a_4.jpg", "a_2.jpg", "q.png", "r.jpg"]
    assert len(set(annotation_names(files))) == len(files)


# ---------------------------------------------------------------- end to end (tiny test model, --cropped)

ASSETS = Path(__file__).resolve().parents[2] / "src" / "emolens" / "assets"


def _crop(path: Path, bright: str, size: int = 32) -> Path:
    """A gray crop bright on the ``left`` or ``right``: the test model says anger / disgust."""
    a = np.full((size, size), 40, np.uint8)
    if bright == "left":
        a[:, : size // 2] = 220
    else:
        a[:, size // 2 :] = 220
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("model") / "tiny.onnx", tiny_meta())


@pytest.fixture()
def crops(tmp_path) -> Path:
    root = tmp_path / "in"
    _crop(root / "b_left.png", "left")
    _crop(root / "a_right.jpg", "right")
    _crop(root / "sub" / "c_left.jpg", "left")
    (root / "sub" / "readme.txt").write_text("not an image")
    return root


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _analyze(capsys, model, *args):
    return cli(["analyze", "--model", model, "--cropped", *args], capsys)


def test_jsonl_end_to_end_sorted_and_predicted(crops, model, capsys):
    code, out, err = _analyze(capsys, model, crops, "-f", "jsonl")
    assert code == 0
    docs = [json.loads(line) for line in out.splitlines()]
    assert [Path(d["source"]).name for d in docs] == ["a_right.jpg", "b_left.png", "c_left.jpg"]
    assert [d["faces"][0]["emotion"] for d in docs] == ["disgust", "anger", "anger"]
    assert all(d["model"] == "tiny" and d["faces"][0]["box"] == [0, 0, 32, 32] for d in docs)
    assert "summary: 3 faces in 3 images: anger 2 (67%), disgust 1 (33%)" in err
    assert "mean probabilities: anger 0." in err


def test_json_document_and_unreadable_file_skipped(crops, model, capsys):
    (crops / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code, out, err = _analyze(capsys, model, crops, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert len(doc["images"]) == 3 and doc["summary"]["faces"] == 3
    assert doc["summary"]["counts"]["anger"] == 2
    assert [e["source"] for e in doc["errors"]] == [str(crops / "zz_broken.jpg")]
    assert doc["errors"][0]["error"] == "UnsupportedMedia"
    assert "error: " in err and "zz_broken.jpg" in err


def test_csv_end_to_end(crops, model, capsys):
    code, out, _ = _analyze(capsys, model, crops, "-f", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [*CSV_FACE_COLUMNS, *tiny_meta().labels]
    assert [r["emotion"] for r in rows] == ["disgust", "anger", "anger"]
    assert all(sum(float(r[lb]) for lb in tiny_meta().labels) == pytest.approx(1, abs=1e-4) for r in rows)


def test_table_end_to_end(crops, model, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _analyze(capsys, model, crops)
    assert code == 0
    assert "a_right.jpg (32x32): 1 face" in out and "Summary: 3 face(s) in 3 image(s)" in out
    assert "summary:" not in err  # the table carries its own summary


def test_quoted_glob_and_no_recursive(crops, model, capsys):
    code, out, _ = _analyze(capsys, model, str(crops / "*.png"), "-f", "jsonl")
    assert code == 0 and [Path(json.loads(x)["source"]).name for x in out.splitlines()] == ["b_left.png"]
    code, out, _ = _analyze(capsys, model, crops, "--no-recursive", "-f", "jsonl")
    assert [Path(json.loads(x)["source"]).name for x in out.splitlines()] == ["a_right.jpg", "b_left.png"]


def test_batch_size_does_not_change_results(crops, model, capsys):
    _, one, _ = _analyze(capsys, model, crops, "-f", "jsonl", "--batch-size", "1")
    _, many, _ = _analyze(capsys, model, crops, "-f", "jsonl", "--batch-size", "64")
    strip = [{**json.loads(x), "timings_ms": None} for x in one.splitlines()]
    assert strip == [{**json.loads(x), "timings_ms": None} for x in many.splitlines()]


def test_annotate_writes_copies_and_resolves_clashes(tmp_path, model, capsys):
    a = _crop(tmp_path / "x" / "face.jpg", "left", size=96)
    _crop(tmp_path / "y" / "face.jpg", "right", size=96)
    _crop(tmp_path / "y" / "other.png", "right", size=96)
    out_dir = tmp_path / "annotated"
    code, _, _ = _analyze(capsys, model, tmp_path / "x", tmp_path / "y", "--annotate", out_dir, "-f", "jsonl")
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["face.jpg", "face_2.jpg", "other.png"]
    original = np.asarray(Image.open(a).convert("RGB")).astype(int)
    written = np.asarray(Image.open(out_dir / "face.jpg").convert("RGB")).astype(int)
    assert written.shape == original.shape
    assert np.abs(written - original).mean() > 5  # box, tag and bars drawn


def test_missing_path_reported_others_analysed(crops, model, capsys):
    code, out, err = _analyze(capsys, model, crops / "a_right.jpg", crops / "nope.jpg", "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert len(doc["images"]) == 1 and doc["errors"][0]["source"] == str(crops / "nope.jpg")
    assert "nope.jpg" in err


def test_nothing_readable_fails_with_the_errors_code(tmp_path, model, capsys):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_text("hello")
    code, out, err = _analyze(capsys, model, tmp_path, "-f", "jsonl")
    assert code == 3
    assert out == ""
    assert "a.jpg" in err and "b.png" in err and "none of the 2 input file(s) could be read" in err


def test_no_input_matched_is_a_clear_error(tmp_path, model, capsys):
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = _analyze(capsys, model, tmp_path, tmp_path / "*.jpg", tmp_path / "missing.png")
    assert code == 2
    assert err.startswith("error: no input matched") and "missing.png" in err


def test_bad_model_is_a_model_format_error(crops, tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not onnx")
    code, _, err = cli(["analyze", crops, "--model", bad], capsys)
    assert code == 6 and "bad.onnx" in err


def test_unknown_detector_is_invalid_input(crops, model, capsys):
    code, _, err = cli(["analyze", crops, "--model", model, "--detector", "nope"], capsys)
    assert code == 2 and "nope" in err


def test_progress_bar_only_when_asked_or_on_a_tty(crops, model, capsys):
    _, _, err = _analyze(capsys, model, crops, "-f", "jsonl", "--progress")
    assert "img/s" in err and "/3 " in err
    _, _, err = _analyze(capsys, model, crops, "-f", "jsonl")
    assert "img/s" not in err


def test_folder_extensions_match_what_the_decoder_reads():
    assert {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS


@pytest.mark.skipif(not (ASSETS / "models.json").is_file(), reason="no shipped models (assets/models.json)")
def test_default_shipped_model_on_crops(crops, capsys):
    code, out, _ = cli(["analyze", crops, "--cropped", "-f", "jsonl"], capsys)
    assert code == 0 and len(out.splitlines()) == 3


def test_real_photos_with_detection(shared_data, model, tmp_path, capsys):
    photos = shared_data / "media" / "photos"
    names = ["dlib_2008_002506.jpg", "fer_justin.jpg", "fer_no_faces_cartoon.jpg"]
    code, out, _ = cli(
        ["analyze", *(photos / n for n in names), "--model", model, "-f", "jsonl", "--annotate", tmp_path], capsys
    )
    assert code == 0
    docs = {Path(d["source"]).name: d for d in map(json.loads, out.splitlines())}
    assert list(docs) == names
    assert len(docs["dlib_2008_002506.jpg"]["faces"]) >= 2
    assert len(docs["fer_justin.jpg"]["faces"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


# ---------------------------------------------------------------- the bad-input corpus through the CLI

CORPUS = corpus()
BAD = [c for c in CORPUS if c.error is not None]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for case in CORPUS:
        (root / case.name).write_bytes(case.data)
    return root


def test_corpus_folder_reads_the_good_and_reports_the_bad(corpus_dir, model, capsys):
    code, out, err = _analyze(capsys, model, corpus_dir, "-f", "json")
    assert code == 0
    doc = json.loads(out)
    sizes = {Path(d["source"]).name: (d["width"], d["height"]) for d in doc["images"]}
    assert sizes == {c.name: c.size for c in CORPUS if c.error is None}
    errors = {Path(e["source"]).name: e["error"] for e in doc["errors"]}
    assert errors == {c.name: c.error.__name__ for c in BAD if c.error is not None}
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == len(BAD)
    assert all(any(c.name in line for line in lines) for c in BAD)


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_each_bad_file_alone_fails_with_its_code(case: Case, corpus_dir, model, capsys):
    code, out, err = _analyze(capsys, model, corpus_dir / case.name, "-f", "jsonl")
    assert case.error is not None
    assert code == case.error.exit_code
    assert out == ""
    assert case.name in err.splitlines()[0] and err.splitlines()[-1].startswith("error: none of the 1")


# ---------------------------------------------------------------- import contract


def test_analyze_path_does_not_import_torch(crops, model):
    """``emolens analyze`` (help and a real run) and ``emolens models`` never import torch."""
    code = (
        "import sys\n"
        "import emolens.cli.analyze, emolens.cli.models, emolens.inference.analyzer\n"
        "from emolens.cli import main\n"
        "assert main(['analyze', '--help']) == 0\n"
        f"assert main(['analyze', {str(crops)!r}, '--cropped', '--model', {str(model)!r}, '-f', 'jsonl']) == 0\n"
        f"assert main(['models', 'show', {str(model)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout.strip().splitlines()) > 3


def test_keypoints_in_the_output_unless_switched_off(shared_data, capsys):
    photo = shared_data / "media" / "photos" / "fer_justin.jpg"
    code, out, _ = cli(["analyze", photo, "-f", "jsonl"], capsys)
    (face,) = json.loads(out)["faces"]
    assert code == 0 and len(face["keypoints"]) == 15 and "roll" in face  # the shipped keypoint model ran
    code, out, _ = cli(["analyze", photo, "-f", "jsonl", "--no-keypoints"], capsys)
    (face,) = json.loads(out)["faces"]
    assert code == 0 and "nose_tip" not in (face.get("keypoints") or {})

"""What face alignment buys the emotion model: accuracy with and without it, on faces that are not upright.

1. **FER2013 test faces turned by known angles** (PrivateTest, labelled): each 48x48 face is turned
   about its centre by every ``--angles`` value (both signs; border pixels repeated) and classified
   as a cropped face by the packaged emotion model, four ways:

   - ``off``: the turned crop as it is (``Analyzer(align=False)``);
   - ``keypoints``: the engine's alignment (``Analyzer(align=True)`` with the keypoint model: the
     crop turned about its centre by the keypoint roll, its framing kept);
   - ``template``: the alternative the engine does not use: the face warped so its 15 points best
     fit their median FER2013 positions (``--template``), eyes level, scale and centre fixed;
   - ``oracle``: the crop turned back by the true angle (the best any roll estimate could do).

   It reports accuracy per angle and the keypoint roll error against the true angle.
2. **The media photos** (no ground truth): faces found by the default detector, classified with
   alignment on and off; it reports how often the two agree, their mean confidence, and how stable
   each is when the whole photo is turned by ``--photo-angle`` degrees either way (share of faces
   whose emotion stays the same as on the upright photo).

``--template`` instead measures where the keypoint model puts each point on FER2013 training
faces (median unit coordinates, made left-right symmetric): the template of the ``template`` variant.

    .venv/bin/python bench/alignment_effect.py --limit 1000
    .venv/bin/python bench/alignment_effect.py --template --limit 5000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emolens.errors import InvalidInput
from emolens.inference.analyzer import Analyzer
from emolens.inference.landmarks import LandmarkModel, fit_frame, shipped_landmark_path, warp_frame
from emolens.inference.shipped import resolve_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data"
PHOTOS = (
    "dlib_2007_007763.jpg", "dlib_2008_001009.jpg", "dlib_2008_001322.jpg", "dlib_2008_002079.jpg",
    "dlib_2008_002470.jpg", "dlib_2008_002506.jpg", "dlib_2008_004176.jpg", "dlib_2008_007676.jpg",
    "dlib_2009_004587.jpg", "dlib_Tom_Cruise_avp_2014_4.jpg", "dlib_bald_guys.jpg",
    "face_recognition_two_people.jpg", "fer_justin.jpg", "wujie_angry_man.jpg", "wujie_crying_woman.jpg",
)


def fer_split(split: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(48x48 faces, labels) of a FER2013 split (train / val / test), the first ``limit`` of them."""
    from emolens.data.fer2013 import read_fer2013

    raw = read_fer2013(SHARED / "fer2013" / "fer2013.csv.gz").splits[split]
    n = min(limit, len(raw)) if limit else len(raw)
    return np.asarray(raw.images[:n]), np.asarray(raw.labels[:n])


def turn(img: np.ndarray, angle: float) -> np.ndarray:
    """``img`` turned counter-clockwise (on screen) by ``angle`` degrees about its centre."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def measure_template(kp: LandmarkModel, limit: int) -> dict[str, list[float]]:
    """Median unit position of every point on FER2013 training faces, made left-right symmetric
    (the emotion models train on mirrored faces too, so a face and its mirror image should frame alike)."""
    faces, _ = fer_split("train", limit)
    pts = np.stack([kp.locate(f, [(0, 0, f.shape[1], f.shape[0])])[0].points for f in faces])
    med = np.median((pts + 0.5) / faces.shape[1], axis=0)
    flip = kp.meta.extra.get("flip", list(range(len(kp.names))))
    mirrored = med[flip] * [-1.0, 1.0] + [1.0, 0.0]
    sym = (med + mirrored) / 2
    return {n: [round(float(u), 4), round(float(v), 4)] for n, (u, v) in zip(kp.names, sym, strict=True)}


def predict(an: Analyzer, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float | None]]:
    """Class indices and rolls of cropped faces."""
    results = list(an.analyze_many(list(images), cropped=True, batch_size=256))
    idx = np.array([an.labels.index(r.faces[0].emotion) for r in results])
    return idx, [r.faces[0].roll for r in results]


def template_crops(kp: LandmarkModel, faces: Sequence[np.ndarray],
                   template: dict[str, list[float]]) -> list[np.ndarray]:
    """Each face warped so its keypoints best fit ``template`` (unit coordinates), eyes level; a face
    whose points cannot be fitted (e.g. a mirrored-looking shape) is kept as it is."""
    tpl = np.array([template[n] for n in kp.names])
    out = []
    for f in faces:
        h, w = f.shape[:2]
        lm = kp.locate(f, [(0, 0, w, h)])[0]
        try:
            out.append(warp_frame(f, fit_frame(lm.points, tpl * w - 0.5, lm.roll), w))
        except InvalidInput:
            out.append(f)
    return out


def fer_rotated(model: Path, kp: LandmarkModel, angles: Sequence[float], limit: int) -> dict[str, Any]:
    faces, labels = fer_split("test", limit)
    off = Analyzer(model, detector="haar", align=False, keypoints=False)
    on = Analyzer(model, detector="haar", align=True, keypoints=kp)
    template = measure_template(kp, 3000)
    _, base_rolls = predict(on, faces)
    out: dict[str, Any] = {"n": len(faces), "angles": {}}
    for angle in sorted({a * s for a in angles for s in (1, -1)}):
        turned = [turn(f, angle) for f in faces]
        acc: dict[str, float] = {}
        acc["off"] = float((predict(off, turned)[0] == labels).mean())
        pred, rolls = predict(on, turned)
        acc["keypoints"] = float((pred == labels).mean())
        acc["template"] = float((predict(off, template_crops(kp, turned, template))[0] == labels).mean())
        acc["oracle"] = float((predict(off, [turn(t, -angle) for t in turned])[0] == labels).mean())
        err = [abs((r or 0.0) - (b or 0.0) - angle) for r, b in zip(rolls, base_rolls, strict=True)]
        acc["roll_error_median_deg"] = float(np.median(err))
        out["angles"][f"{angle:+.0f}"] = acc
        print(f"  angle {angle:+5.0f}: " + "  ".join(f"{k} {v:.4f}" for k, v in acc.items()), flush=True)
    return out


def _faces(an: Analyzer, rgb: np.ndarray) -> list[tuple[tuple[float, float], str, float]]:
    res = an.analyze(rgb)
    return [((f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2), f.emotion, f.confidence) for f in res.faces]


def _match(a: list[tuple[tuple[float, float], str, float]], b: list[tuple[tuple[float, float], str, float]],
           to_b: Callable[[tuple[float, float]], tuple[float, float]], tol: float) -> list[tuple[str, str]]:
    pairs = []
    for ca, ea, _ in a:
        mx, my = to_b(ca)
        near = [(math.hypot(cb[0] - mx, cb[1] - my), eb) for cb, eb, _ in b]
        if near and min(near)[0] < tol:
            pairs.append((ea, min(near)[1]))
    return pairs


def photos(model: Path, kp: LandmarkModel, photo_angle: float) -> dict[str, Any]:
    from emolens.inference.imageio import load_image

    modes = {"on": Analyzer(model, align=True, keypoints=kp), "off": Analyzer(model, align=False, keypoints=kp)}
    stats: dict[str, dict[str, float]] = {m: {"faces": 0, "conf": 0.0, "stable": 0, "pairs": 0} for m in modes}
    agree = 0
    for name in PHOTOS:
        path = SHARED / "media" / "photos" / name
        if not path.is_file():
            continue
        rgb = load_image(path).rgb
        h, w = rgb.shape[:2]
        upright = {m: _faces(an, rgb) for m, an in modes.items()}
        agree += sum(a[1] == b[1] for a, b in zip(upright["on"], upright["off"], strict=True))
        for m, an in modes.items():
            stats[m]["faces"] += len(upright[m])
            stats[m]["conf"] += sum(f[2] for f in upright[m])
            for angle in (photo_angle, -photo_angle):
                rot = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
                turned = cv2.warpAffine(rgb, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
                pairs = _match(upright[m], _faces(an, turned),
                               lambda c, r=rot: (r[0, 0] * c[0] + r[0, 1] * c[1] + r[0, 2],
                                                 r[1, 0] * c[0] + r[1, 1] * c[1] + r[1, 2]), tol=0.05 * max(h, w))
                stats[m]["pairs"] += len(pairs)
                stats[m]["stable"] += sum(a == b for a, b in pairs)
    n = stats["on"]["faces"]
    out = {"faces": n, "agreement_on_off": agree / n if n else float("nan")}
    for m, s in stats.items():
        out[m] = {"mean_confidence": s["conf"] / max(1, s["faces"]),
                  f"stable_under_{photo_angle:g}deg": s["stable"] / max(1, s["pairs"]), "matched": s["pairs"]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="emotion model (path or packaged name; default: the default one)")
    ap.add_argument("--keypoints", type=Path, default=None, help="keypoint .onnx (default: the packaged one)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N test faces (0 = all 3,589)")
    ap.add_argument("--angles", default="0,10,20,30", help="turn angles in degrees (each also negated)")
    ap.add_argument("--photo-angle", type=float, default=15.0)
    ap.add_argument("--template", action="store_true", help="measure the FER2013 keypoint template instead")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    kp_path = args.keypoints or shipped_landmark_path()
    if kp_path is None:
        print("no keypoint model: pass --keypoints or ship one", file=sys.stderr)
        return 1
    kp = LandmarkModel(kp_path)
    if args.template:
        print(json.dumps(measure_template(kp, args.limit or 5000), indent=1))
        return 0
    model = resolve_model(args.model)
    print(f"emotion model {model}, keypoint model {kp_path}")
    print("FER2013 test faces turned by known angles (accuracy):")
    report = {"fer2013_rotated": fer_rotated(model, kp, [float(a) for a in args.angles.split(",")], args.limit)}
    print("media photos (no ground truth):")
    report["photos"] = photos(model, kp, args.photo_angle)
    print(json.dumps(report["photos"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare the face detectors of emolens on real photos with ground-truth boxes.

For each installed detector configuration it prints:

* recall and precision at IoU >= 0.5 against the boxes in
  ``media/photos/dlib_{training,testing}_faceboxes.xml`` (imglab XML, 43 faces over 9 VOC photos),
  recall also per file;
* false detections on the two negative images (``dlib_dogs.jpg``, ``fer_no_faces_cartoon.jpg``);
* speed per 640x480 image: wall ms (the fastest of ``--repeat`` runs of each photo resized to
  640x480, averaged over photos) and CPU ms (process time of the same call, all threads; unlike
  wall time it does not grow when other programs compete for the cores); OpenCV threads as set by
  ``--threads``;
* the box residual on the testing file: median width ratio and vertical centre offset (in box
  widths) of matched detections against the truth. Each backend maps its raw boxes to the
  annotation convention with a scale and shift fitted on all 43 boxes; (1.00, +0.00) is perfect.

With ``--eyes`` it also measures the Haar eye finder used for alignment when a detector gives no
landmarks: 400 faces of the facial-keypoints test split (upscaled to 192 px, turned by a random
+-25 degrees) -> how often a pair is accepted, and the error of the measured eye-line angle.

Note: dlib's HOG detector defines the annotation convention of these XML files and was trained by
dlib's author on similar data, so its IoU scores are flattered.

    .venv/bin/python bench/detectors.py                 # the standard configurations
    .venv/bin/python bench/detectors.py --grid          # also a Haar parameter grid
    .venv/bin/python bench/detectors.py --eyes          # also the eye finder
    PYTHONPATH=src /path/to/venv-with-mediapipe/bin/python bench/detectors.py   # optional backends
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emolens.inference.detect import create_detector, iou, list_detectors
from emolens.inference.imageio import load_image

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media" / "photos"
NEGATIVES = ("dlib_dogs.jpg", "fer_no_faces_cartoon.jpg")

STANDARD: list[tuple[str, dict[str, Any]]] = [
    ("yunet", {}),
    ("yunet", {"score_threshold": 0.7}),
    ("yunet", {"score_threshold": 0.9}),
    ("yunet", {"max_side": 640}),
    ("haar", {}),
    ("haar", {"equalize": True}),
    ("haar", {"cascade": "default", "min_neighbors": 5}),
    ("haar", {"profile": True}),
    ("haar", {"scale_factor": 1.05, "min_neighbors": 4}),
    ("dlib", {}),
    ("dlib", {"upsample": 0}),
    ("mediapipe", {}),
    ("mediapipe", {"model_selection": 0}),
]


def load_truth(photos: Path) -> dict[str, dict[Path, list[tuple[int, int, int, int]]]]:
    """split -> image path -> ground-truth boxes (x, y, w, h), from the imglab XML files."""
    out: dict[str, dict[Path, list[tuple[int, int, int, int]]]] = {}
    for split in ("training", "testing"):
        root = ET.parse(photos / f"dlib_{split}_faceboxes.xml").getroot()
        out[split] = {
            photos / f"dlib_{im.get('file')}": [
                (int(b.get("left", 0)), int(b.get("top", 0)), int(b.get("width", 0)), int(b.get("height", 0)))
                for b in im.iter("box")
                if b.get("ignore") != "1"
            ]
            for im in root.iter("image")
        }
    return out


def match(dets: list[tuple[int, int, int, int]], truth: list[tuple[int, int, int, int]], thr: float = 0.5):
    """Greedy one-to-one matching by IoU: list of (det index, truth index, iou) with iou >= thr."""
    pairs = sorted(((iou(d, g), i, j) for i, d in enumerate(dets) for j, g in enumerate(truth)), reverse=True)
    used_d: set[int] = set()
    used_g: set[int] = set()
    out = []
    for v, i, j in pairs:
        if v < thr:
            break
        if i not in used_d and j not in used_g:
            used_d.add(i)
            used_g.add(j)
            out.append((i, j, v))
    return out


@dataclass
class Row:
    label: str
    recall: dict[str, float]
    precision: float
    fp_neg: int
    ms: float
    cpu_ms: float
    residual: tuple[float, float]


def evaluate(label: str, det: Any, truth, images, negatives, speed_images, repeat: int) -> Row:
    tp = {s: 0 for s in truth}
    n_truth = {s: sum(len(b) for b in truth[s].values()) for s in truth}
    n_det, ratios, shifts = 0, [], []
    for split, items in truth.items():
        for path, gt in items.items():
            boxes = [d.box for d in det.detect(images[path])]
            n_det += len(boxes)
            m = match(boxes, gt)
            tp[split] += len(m)
            if split == "testing":
                for i, j, _ in m:
                    d, g = boxes[i], gt[j]
                    ratios.append(d[2] / g[2])
                    shifts.append(((d[1] + d[3] / 2) - (g[1] + g[3] / 2)) / g[2])
    fp_neg = sum(len(det.detect(img)) for img in negatives)
    per_image: list[float] = []
    cpu_image: list[float] = []
    for img in speed_images if repeat > 0 else []:
        det.detect(img)  # warm-up (lazy per-thread state)
        ts, cs = [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            det.detect(img)
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        per_image.append(min(ts))
        cpu_image.append(min(cs))
    recall = {s: tp[s] / n_truth[s] for s in truth}
    recall["all"] = sum(tp.values()) / sum(n_truth.values())
    return Row(
        label, recall, sum(tp.values()) / max(n_det, 1), fp_neg,
        1000 * float(np.mean(per_image)) if per_image else float("nan"),
        1000 * float(np.mean(cpu_image)) if cpu_image else float("nan"),
        (float(np.median(ratios)) if ratios else float("nan"), float(np.median(shifts)) if shifts else float("nan")),
    )


def haar_grid() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("haar", {"cascade": c, "scale_factor": sf, "min_neighbors": mn, "min_size": ms})
        for c in ("alt2", "default")
        for sf in (1.05, 1.1, 1.2)
        for mn in (2, 3, 4, 5)
        for ms in (16, 24)
    ]


def eye_report(keypoints: Path, n: int = 400, seed: int = 0) -> str:
    """Accepted pairs and angle error of :class:`HaarEyeFinder` on turned facial-keypoints faces."""
    from emolens.inference.align import eye_angle
    from emolens.inference.eyes import HaarEyeFinder

    z = np.load(keypoints)
    rng = np.random.default_rng(seed)
    finder = HaarEyeFinder()
    errors, missed_tilt, t = [], [], 0.0
    for img, p in zip(z["test_images"][:n], z["test_points"][:n], strict=True):
        big = cv2.copyMakeBorder(cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC),
                                 48, 48, 48, 48, cv2.BORDER_REPLICATE)
        tilt = float(rng.uniform(-25, 25))
        m = cv2.getRotationMatrix2D((144.0, 144.0), tilt, 1.0)
        rot = cv2.warpAffine(big, m, (288, 288), borderMode=cv2.BORDER_REPLICATE)
        q = (p * 2 + 48) @ m[:, :2].T + m[:, 2]
        truth = eye_angle(q[36:42].mean(0), q[42:48].mean(0))
        side = int(np.ptp(p[0:17, 0]) * 2)
        cx, cy = q[27:36].mean(0)
        t0 = time.process_time()
        eyes = finder.find(rot, (int(cx - side / 2), int(cy - side / 2), side, side))
        t += time.process_time() - t0
        if eyes is None:
            missed_tilt.append(abs(truth))
        else:
            errors.append(abs(eye_angle(*eyes) - truth))
    e = np.array(errors)
    return (f"eye finder: pairs accepted on {len(e)}/{n} faces; angle error median {np.median(e):.1f} deg, "
            f"90th percentile {np.percentile(e, 90):.1f}, over 10 deg {np.mean(e > 10) * 100:.1f} %; "
            f"mean |tilt| left unaligned {np.mean(missed_tilt):.1f} deg; CPU {1000 * t / n:.1f} ms/face")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=PHOTOS)
    ap.add_argument("--grid", action="store_true", help="also run a Haar parameter grid")
    ap.add_argument("--eyes", action="store_true", help="also measure the Haar eye finder")
    ap.add_argument("--repeat", type=int, default=5, help="timing runs per photo")
    ap.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads for the run (0 = OpenCV default)")
    args = ap.parse_args()
    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    truth = load_truth(args.photos)
    images = {p: load_image(p).rgb for split in truth.values() for p in split}
    negatives = [load_image(args.photos / n).rgb for n in NEGATIVES]
    speed = [cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA) for img in images.values()]
    configs = [(n, kw, args.repeat) for n, kw in STANDARD]
    configs += [(n, kw, 0) for n, kw in haar_grid()] if args.grid else []  # the grid is not timed
    available = set(list_detectors())
    print(f"installed detectors: {', '.join(sorted(available))}; faces: "
          + ", ".join(f"{s} {sum(len(b) for b in truth[s].values())}" for s in truth))
    header = (f"{'detector':<58} {'R train':>7} {'R test':>7} {'recall':>7} {'prec':>6} "
              f"{'FP neg':>6} {'ms/img':>7} {'CPU ms':>7} {'box w':>6} {'box dy':>7}")
    print(header)
    print("-" * len(header))
    for name, kw, repeat in configs:
        if name not in available:
            print(f"{name:<58} (not installed)")
            continue
        label = name + ("" if not kw else " " + ",".join(f"{k}={v}" for k, v in kw.items()))
        r = evaluate(label, create_detector(name, **kw), truth, images, negatives, speed, repeat)
        print(f"{r.label:<58} {r.recall['training']:7.2f} {r.recall['testing']:7.2f} {r.recall['all']:7.2f} "
              f"{r.precision:6.2f} {r.fp_neg:6d} {r.ms:7.1f} {r.cpu_ms:7.1f} "
              f"{r.residual[0]:6.2f} {r.residual[1]:+7.2f}")
    if args.eyes:
        print(eye_report(args.photos.parents[1] / "facial-keypoints" / "keypoints68.npz"))


if __name__ == "__main__":
    main()

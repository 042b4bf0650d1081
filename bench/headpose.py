"""How good is the head pose of every face? Error, mirror symmetry, roll agreement and signs, on real faces.

There is no 3D ground truth here, so the pose is checked four ways:

1. **Against the hand-annotated landmarks** (``facial-keypoints/keypoints68.npz`` test split, 770 real
   faces from YouTube Faces frames): the engine's pose (YuNet's five landmarks on the 96x96 face,
   enlarged as the detector does for small images) against the pose the same generic-face fit gives
   from the annotated points (eye centres = mean of the six eye points, nose tip, mouth corners).
   This measures what landmark errors cost, not the generic model's own error.
2. **Mirror symmetry**: each face and its mirror image; yaw and roll must flip sign, pitch stay.
3. **Roll against the keypoint model's roll** (the eye line of ``keypoints15``), on the same faces.
4. **Signs on turned faces**: for faces whose annotated nose tip sits clearly off the eye midpoint
   (> 10% of the eye distance: turned left or right) or clearly high or low relative to the
   eye-mouth line, the share whose yaw / pitch has the sign that offset implies.

    .venv/bin/python bench/headpose.py            # all 770 test faces
    .venv/bin/python bench/headpose.py --n 200    # quicker
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from emolens.inference.analyzer import Analyzer
from emolens.inference.headpose import estimate_pose

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "facial-keypoints" / "keypoints68.npz"


def annotated_five(p68: np.ndarray) -> np.ndarray:
    """Image-left eye, image-right eye, nose tip, image-left and image-right mouth corner from iBUG-68."""
    return np.stack([p68[36:42].mean(0), p68[42:48].mean(0), p68[30], p68[48], p68[54]]).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--n", type=int, default=0, help="use the first N test faces (0 = all)")
    args = ap.parse_args()
    z = np.load(args.data)
    images, points = z["test_images"], z["test_points"]
    if args.n > 0:
        images, points = images[: args.n], points[: args.n]
    an = Analyzer(whole_image_fallback=False)
    rows = []
    for img, p68 in zip(images, points, strict=True):
        rgb = np.repeat(img[:, :, None], 3, 2)
        ref = estimate_pose(annotated_five(p68), img.shape)
        res = an.analyze(rgb)
        mir = an.analyze(np.ascontiguousarray(rgb[:, ::-1]))
        face = max(res.faces, key=lambda f: f.box[2] * f.box[3], default=None)
        mface = max(mir.faces, key=lambda f: f.box[2] * f.box[3], default=None)
        five = annotated_five(p68)
        iod = float(np.hypot(*(five[1] - five[0])))
        nose_dx = (five[2, 0] - (five[0, 0] + five[1, 0]) / 2) / iod
        eye_y, mouth_y = (five[0, 1] + five[1, 1]) / 2, (five[3, 1] + five[4, 1]) / 2
        nose_dy = (five[2, 1] - eye_y) / max(mouth_y - eye_y, 1e-6)  # 0 at the eyes, 1 at the mouth
        rows.append((ref, face, mface, nose_dx, nose_dy))
    found = [r for r in rows if r[1] is not None and r[1].yaw is not None and r[0] is not None]
    print(f"faces: {len(rows)}; found with a pose: {len(found)} ({len(found) / max(len(rows), 1):.1%})")
    yaw_err = np.array([abs(f.yaw - ref.yaw) for ref, f, *_ in found])
    pitch_err = np.array([abs(f.pitch - ref.pitch) for ref, f, *_ in found])
    print(f"1. vs annotated landmarks: yaw error median {np.median(yaw_err):.1f} deg (90th pct "
          f"{np.percentile(yaw_err, 90):.1f}), pitch error median {np.median(pitch_err):.1f} deg "
          f"(90th pct {np.percentile(pitch_err, 90):.1f})")
    both = [(f, m) for _, f, m, *_ in found if m is not None and m.yaw is not None]
    sym_yaw = np.array([abs(f.yaw + m.yaw) for f, m in both])
    sym_pitch = np.array([abs(f.pitch - m.pitch) for f, m in both])
    sym_roll = np.array([abs(f.roll + m.roll) for f, m in both if f.roll is not None and m.roll is not None])
    opposite = np.mean([np.sign(f.yaw) == -np.sign(m.yaw) for f, m in both if abs(f.yaw) > 5])
    print(f"2. mirror (n={len(both)}): |yaw + yaw_mirror| median {np.median(sym_yaw):.1f} deg, "
          f"|pitch - pitch_mirror| median {np.median(sym_pitch):.1f} deg, |roll + roll_mirror| median "
          f"{np.median(sym_roll):.1f} deg; opposite yaw sign where |yaw| > 5: {opposite:.1%}")
    roll_gap = []
    for img, (_, f, *_) in zip(images, rows, strict=True):
        if f is None or f.roll is None:
            continue
        rgb = np.repeat(img[:, :, None], 3, 2)
        dets = an.detect_faces(rgb)
        pose = estimate_pose(max(dets, key=lambda d: d.box[2] * d.box[3]).landmarks, img.shape) if dets else None
        if pose is not None:
            roll_gap.append(abs(pose.roll - f.roll))
    if roll_gap:
        print(f"3. roll (YuNet landmarks) vs the keypoint model's eye-line roll (n={len(roll_gap)}): median gap "
              f"{np.median(roll_gap):.1f} deg, 90th pct {np.percentile(roll_gap, 90):.1f}")
    turned = [(f, dx) for _, f, _, dx, _ in found if abs(dx) > 0.1]
    yaw_ok = np.mean([np.sign(f.yaw) == np.sign(dx) for f, dx in turned]) if turned else float("nan")
    dys = np.array([dy for *_, dy in found])
    lo, hi = np.percentile(dys, [15, 85])
    tilted = [(f, dy) for _, f, _, _, dy in found if dy < lo or dy > hi]
    # a head tilted up brings the nose tip towards the eye line (small dy), tilted down towards the mouth
    med_pitch = np.median([g.pitch for _, g, *_ in found])
    pitch_ok = np.mean([(f.pitch > med_pitch) == (dy < np.median(dys))
                        for f, dy in tilted]) if tilted else float("nan")
    print(f"4. signs: yaw agrees with the nose offset on {yaw_ok:.1%} of {len(turned)} turned faces; pitch "
          f"ranks with the nose height on {pitch_ok:.1%} of the {len(tilted)} faces with the most extreme "
          "nose heights (top and bottom 15%)")


if __name__ == "__main__":
    main()

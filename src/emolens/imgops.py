"""The image operations of the inference path, on OpenCV when it is installed and on numpy otherwise.

The core install (``pip install emolens``) carries no OpenCV: at 162 MB it was over 40% of the core's
size, for a handful of operations on small images. Every extra that reads video (``video``,
``campaign``, ``serve``, ``train``) or draws (``opencv``) installs it, and then these functions are
OpenCV's own. Without it they are numpy versions of the same operations with the same conventions
(pixel centres, borders, rounding), tested against OpenCV (``tests/test_imgops.py``): results agree to
about one grey level, face boxes to a fraction of a pixel. Only the Haar detector, annotated images
and video need OpenCV itself; they raise :class:`~emolens.errors.MissingExtra` naming the ``opencv``
extra when it is missing.

The numpy versions are also public as ``np_*`` (tests compare them with OpenCV's).

Conventions are OpenCV's: images are ``(H, W)`` or ``(H, W, C)`` arrays, sizes are ``(width, height)``,
2x3 affine matrices map source to destination pixels, angles are in degrees, counter-clockwise on screen.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import MissingExtra

_cv2: Any
try:  # the optional fast path
    import cv2 as _cv2
except ImportError:  # the core install
    _cv2 = None

HAVE_CV2 = _cv2 is not None

AREA, LINEAR, CUBIC = "area", "linear", "cubic"
"""Interpolations of :func:`resize` (OpenCV's INTER_AREA, INTER_LINEAR, INTER_CUBIC)."""


def require_cv2(what: str) -> Any:
    """The ``cv2`` module, or :class:`MissingExtra` saying that ``what`` needs the ``opencv`` extra."""
    if _cv2 is None:
        raise MissingExtra(f"{what} needs OpenCV, which the core install leaves out: pip install 'emolens[opencv]' "
                           "(every extra that reads video installs it too)", extra="opencv")
    return _cv2


def set_threads(n: int) -> None:
    """OpenCV's thread count (process-wide); nothing to do without OpenCV (numpy runs single-threaded)."""
    if _cv2 is not None:
        _cv2.setNumThreads(n)


# ----------------------------------------------------------------------------- colour


def rgb_to_gray(img: np.ndarray) -> np.ndarray:
    """``uint8`` RGB -> grey, ``0.299 R + 0.587 G + 0.114 B`` in OpenCV's 15-bit fixed point (identical)."""
    if _cv2 is not None:
        return _cv2.cvtColor(img, _cv2.COLOR_RGB2GRAY)
    return np_rgb_to_gray(img)


def np_rgb_to_gray(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        out = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
        return out.astype(img.dtype)
    c = img.astype(np.uint32)
    return ((c[..., 0] * 9798 + c[..., 1] * 19235 + c[..., 2] * 3735 + 16384) >> 15).astype(np.uint8)


def gray_to_rgb(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))


def rgba_to_rgb(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, :, :3])


# ----------------------------------------------------------------------------- geometry


def rotation_matrix(center: tuple[float, float], angle: float, scale: float = 1.0) -> np.ndarray:
    """OpenCV's ``getRotationMatrix2D``: a 2x3 matrix turning by ``angle`` degrees about ``center``."""
    a = math.radians(angle)
    alpha, beta = scale * math.cos(a), scale * math.sin(a)
    cx, cy = center
    return np.array([[alpha, beta, (1 - alpha) * cx - beta * cy],
                     [-beta, alpha, beta * cx + (1 - alpha) * cy]], dtype=np.float64)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (OpenCV's ``invertAffineTransform``)."""
    m = np.asarray(m, dtype=np.float64)
    a = m[:, :2]
    inv = np.linalg.inv(a)
    return np.hstack([inv, -inv @ m[:, 2:3]])


def pad_replicate(img: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """The image with its edge pixels repeated outwards (OpenCV's BORDER_REPLICATE)."""
    pads = [(top, bottom), (left, right)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, pads, mode="edge")


def _finish(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(dtype)


def warp_affine(img: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` mapped by the 2x3 matrix ``m`` into a ``size = (width, height)`` image, bilinear, edge pixels
    repeated outside (OpenCV's ``warpAffine`` with INTER_LINEAR and BORDER_REPLICATE)."""
    if _cv2 is not None:
        return _cv2.warpAffine(img, np.asarray(m, dtype=np.float64), size, flags=_cv2.INTER_LINEAR,
                               borderMode=_cv2.BORDER_REPLICATE)
    return np_warp_affine(img, m, size)


def np_warp_affine(img: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    inv = invert_affine(m)
    ys, xs = np.mgrid[0:h, 0:w]
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    return _bilinear(img, sx, sy)


def _bilinear(img: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    src_h, src_w = img.shape[:2]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0i, y0i = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb = np.clip(x0i, 0, src_w - 1), np.clip(x0i + 1, 0, src_w - 1)
    ya, yb = np.clip(y0i, 0, src_h - 1), np.clip(y0i + 1, 0, src_h - 1)
    src = img.reshape(src_h, src_w, -1)  # gathered before converting: the source may be a whole photo

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return src[yy, xx].astype(np.float32)

    fx, fy = fx.astype(np.float32), fy.astype(np.float32)
    out = (1 - fy) * ((1 - fx) * at(ya, xa) + fx * at(ya, xb)) + fy * ((1 - fx) * at(yb, xa) + fx * at(yb, xb))
    return _finish(out.reshape(sx.shape + img.shape[2:]), img.dtype)


# ----------------------------------------------------------------------------- resizing


def _taps(n_in: int, n_out: int, interp: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each ``(n_out, k)``: output pixel j is ``sum(weights[j] * in[indices[j]])``."""
    scale = n_in / n_out
    j = np.arange(n_out, dtype=np.float64)
    if interp == AREA and scale > 1:  # each output pixel averages the input it covers
        k = math.ceil(scale) + 1
        start = j * scale
        first = np.floor(start).astype(np.int64)
        idx = first[:, None] + np.arange(k)[None, :]
        lo = np.maximum(idx, start[:, None])
        hi = np.minimum(idx + 1, (start + scale)[:, None])
        weights = np.clip(hi - lo, 0, None) / scale
    elif interp == CUBIC:
        src = (j + 0.5) * scale - 0.5
        first = np.floor(src).astype(np.int64)
        t = (src - first)[:, None] + np.array([1.0, 0.0, -1.0, -2.0])[None, :]  # distances to the 4 taps
        at = np.abs(t)
        a = -0.75  # OpenCV's cubic
        weights = np.where(at <= 1, ((a + 2) * at - (a + 3)) * at * at + 1,
                           np.where(at < 2, ((at - 5) * at + 8) * at * a - 4 * a, 0.0))
        idx = first[:, None] + np.arange(-1, 3)[None, :]
    else:  # linear (also AREA when enlarging, as OpenCV does)
        src = np.maximum((j + 0.5) * scale - 0.5, 0.0)
        first = np.floor(src).astype(np.int64)
        frac = src - first
        idx = first[:, None] + np.arange(2)[None, :]
        weights = np.stack([1 - frac, frac], axis=1)
    return np.clip(idx, 0, n_in - 1), weights


def _resample(img: np.ndarray, axis: int, n_out: int, interp: str) -> np.ndarray:
    idx, weights = _taps(img.shape[axis], n_out, interp)
    moved = np.moveaxis(img, axis, 0)
    out = np.zeros((n_out, *moved.shape[1:]), dtype=np.float32)
    for t in range(idx.shape[1]):
        w = weights[:, t].astype(np.float32).reshape((n_out,) + (1,) * (moved.ndim - 1))
        out += w * moved[idx[:, t]]
    return np.moveaxis(out, 0, axis)


def resize(img: np.ndarray, size: tuple[int, int], interp: str = LINEAR) -> np.ndarray:
    """``img`` resized to ``size = (width, height)`` (OpenCV's ``resize`` with INTER_AREA / LINEAR / CUBIC)."""
    if _cv2 is not None:
        flag = {AREA: _cv2.INTER_AREA, LINEAR: _cv2.INTER_LINEAR, CUBIC: _cv2.INTER_CUBIC}[interp]
        return _cv2.resize(img, size, interpolation=flag)
    return np_resize(img, size, interp)


def np_resize(img: np.ndarray, size: tuple[int, int], interp: str = LINEAR) -> np.ndarray:
    w, h = size
    if (h, w) == img.shape[:2]:
        return img.copy()
    out = _resample(_resample(img.astype(np.float32), 1, w, interp), 0, h, interp)
    return _finish(out, img.dtype)


# ----------------------------------------------------------------------------- detection and pose


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes ``(x, y, w, h)`` kept by greedy non-maximum suppression, best score first
    (OpenCV's ``dnn.NMSBoxes``: scores above ``score_threshold``, IoU above ``iou_threshold`` suppressed)."""
    boxes, scores = np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores, dtype=np.float64)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold]
    area = boxes[:, 2] * boxes[:, 3]
    keep: list[int] = []
    for i in order:
        if keep:
            k = np.asarray(keep)
            x0 = np.maximum(boxes[i, 0], boxes[k, 0])
            y0 = np.maximum(boxes[i, 1], boxes[k, 1])
            x1 = np.minimum(boxes[i, 0] + boxes[i, 2], boxes[k, 0] + boxes[k, 2])
            y1 = np.minimum(boxes[i, 1] + boxes[i, 3], boxes[k, 1] + boxes[k, 3])
            inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
            iou = inter / np.maximum(area[i] + area[k] - inter, 1e-12)
            if (iou > iou_threshold).any():
                continue
        keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """The rotation matrix of a rotation vector (axis times angle in radians)."""
    return _rodrigues_many(np.asarray(rvec, dtype=np.float64).reshape(1, 3))[0]


def _rodrigues_many(r: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(m, 3, 3)`` of rotation vectors ``(m, 3)``."""
    theta = np.linalg.norm(r, axis=1)
    k = r / np.maximum(theta, 1e-12)[:, None]
    kx = np.zeros((len(r), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx[:, 1, 0], kx[:, 2, 0], kx[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3)[None] + s * kx + (1 - c) * (kx @ kx)


def _residuals(params: np.ndarray, obj: np.ndarray, pts: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Reprojection residuals ``(m, 2P)`` of ``m`` poses ``(rvec, tvec)`` at once."""
    cam = np.einsum("mij,pj->mpi", _rodrigues_many(params[:, :3]), obj) + params[:, None, 3:]
    z = np.where(np.abs(cam[..., 2]) < 1e-9, 1e-9, cam[..., 2])
    proj = np.stack([k[0, 0] * cam[..., 0] / z + k[0, 2], k[1, 1] * cam[..., 1] / z + k[1, 2]], axis=-1)
    return (proj - pts[None]).reshape(len(params), -1)


def solve_pnp(obj: np.ndarray, img_pts: np.ndarray, k: np.ndarray, rvec: np.ndarray,
              tvec: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
    """The pose ``(ok, rvec, tvec)`` (column vectors) that projects the 3D points ``obj`` onto ``img_pts``
    through the camera ``k`` (no distortion), refined from the guess ``rvec, tvec`` by Levenberg-Marquardt on
    the reprojection error (OpenCV's ``solvePnP`` with SOLVEPNP_ITERATIVE and useExtrinsicGuess)."""
    obj = np.asarray(obj, dtype=np.float64).reshape(-1, 3)
    pts = np.asarray(img_pts, dtype=np.float64).reshape(-1, 2)
    k = np.asarray(k, dtype=np.float64)
    if _cv2 is not None:
        ok, r, t = _cv2.solvePnP(obj, pts.reshape(-1, 1, 2), k, None, np.asarray(rvec, dtype=np.float64).reshape(3, 1),
                                 np.asarray(tvec, dtype=np.float64).reshape(3, 1), useExtrinsicGuess=True,
                                 flags=_cv2.SOLVEPNP_ITERATIVE)
        return bool(ok), np.asarray(r, dtype=np.float64), np.asarray(t, dtype=np.float64)
    return np_solve_pnp(obj, pts, k, rvec, tvec)


def np_solve_pnp(obj: np.ndarray, pts: np.ndarray, k: np.ndarray, rvec: np.ndarray,
                 tvec: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
    obj = np.asarray(obj, dtype=np.float64).reshape(-1, 3)
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    k = np.asarray(k, dtype=np.float64)
    p = np.concatenate([np.asarray(rvec, dtype=np.float64).reshape(3), np.asarray(tvec, dtype=np.float64).reshape(3)])
    res = _residuals(p[None], obj, pts, k)[0]
    cost, lam = float(res @ res), 1e-3
    for _ in range(100):
        steps = 1e-6 * np.maximum(1.0, np.abs(p))
        probe = np.concatenate([p + np.diag(steps), p - np.diag(steps)])  # central differences, one batch
        r = _residuals(probe, obj, pts, k)
        jac = ((r[:6] - r[6:]) / (2 * steps)[:, None]).T
        jtj, jtr = jac.T @ jac, jac.T @ res
        improved = False
        while lam < 1e12:
            delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), -jtr)
            cand = p + delta
            cand_res = _residuals(cand[None], obj, pts, k)[0]
            cand_cost = float(cand_res @ cand_res)
            if np.isfinite(cand_cost) and cand_cost < cost:
                gain = cost - cand_cost
                p, res, cost, lam, improved = cand, cand_res, cand_cost, max(lam / 10, 1e-12), True
                break
            lam *= 10
        if not improved or gain <= 1e-12 * max(cost, 1e-12) or np.linalg.norm(delta) < 1e-10 * (np.linalg.norm(p) + 1):
            break
    ok = bool(np.isfinite(p).all())
    return ok, p[:3].reshape(3, 1), p[3:].reshape(3, 1)

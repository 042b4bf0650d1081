"""Pure preprocessing shared by training and serving: arrays in, arrays out.

Images inside emolens are ``uint8`` arrays, ``(H, W)`` gray or ``(H, W, 3)`` RGB. The model input
is ``float32 (N, C, H, W)``: pixels scaled to [0, 1], then ``(x - mean) / std`` per channel, with
``mean``/``std``/size/channels read from the model's :class:`~emolens.modelmeta.ModelMeta`.
Training applies :func:`prepare_uint8` to its datasets and the same normalisation formula after
augmentation, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import imgops
from .errors import InvalidInput


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Convert a uint8 gray ``(H, W)`` / ``(H, W, 1)`` or RGB(A) ``(H, W, 3|4)`` image to 1 or 3 channels.

    Returns ``(H, W)`` for one channel and ``(H, W, 3)`` RGB for three.
    """
    if img.dtype != np.uint8:
        raise InvalidInput(f"expected a uint8 image, got dtype {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = imgops.rgba_to_rgb(img)
    if img.ndim == 2:
        return img if channels == 1 else imgops.gray_to_rgb(img)
    if img.ndim == 3 and img.shape[2] == 3:
        return imgops.rgb_to_gray(img) if channels == 1 else img
    raise InvalidInput(f"cannot use an image of shape {img.shape}; expected (H, W) or (H, W, 1|3|4)")


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` = (height, width): area interpolation to shrink, linear to enlarge."""
    h, w = img.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return img
    interp = imgops.AREA if h * w > th * tw else imgops.LINEAR
    return imgops.resize(img, (tw, th), interp)


def prepare_uint8(images: Sequence[np.ndarray] | np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Face crops of any size and colour -> ``uint8 (N, C, H, W)`` at the model's size and channels."""
    n = len(images)
    out = np.empty((n, channels, size[0], size[1]), dtype=np.uint8)
    for i, img in enumerate(images):
        x = resize(to_channels(np.asarray(img), channels), size)
        out[i] = x[None] if channels == 1 else x.transpose(2, 0, 1)
    return out


def normalize(batch: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``uint8`` or [0, 1] float ``(N, C, H, W)`` -> float32 ``(x / 255 - mean) / std``.

    A float batch is taken to be already in [0, 1].
    """
    x = batch.astype(np.float32) / 255.0 if batch.dtype == np.uint8 else batch.astype(np.float32, copy=False)
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    if x.ndim != 4 or x.shape[1] != m.shape[1]:
        raise InvalidInput(f"expected (N, {m.shape[1]}, H, W), got {x.shape}")
    return (x - m) / s


def to_model_input(
    images: Sequence[np.ndarray] | np.ndarray,
    size: tuple[int, int],
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> np.ndarray:
    """Face crops -> the float32 tensor a model with this metadata expects."""
    return normalize(prepare_uint8(images, size, channels), mean, std)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64-safe float32."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)

"""Tiny generated datasets and quickly trained checkpoints for the evaluation, export and CLI tests.

The images are learnable: class ``k`` has its own mean brightness on a noisy background, so a few
optimisation steps already give a model far better than chance. ``TEST_ARCH`` is a throwaway
conv-BN network registered under a test-only name (fast on a busy CPU); the export tests also use
the real ``tiny`` architecture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emolens.data.base import FaceDataset, Split
from emolens.labels import FER7
from emolens.modelmeta import ModelMeta

SIZE = 24


def make_images(y: np.ndarray, size: int = SIZE, seed: int = 0, rgb: bool = False) -> np.ndarray:
    """uint8 faces whose class ``k`` has mean brightness ``30 + 28 k`` (noise +-20), plus a left-side
    mark so that mirrored images differ from the originals."""
    rng = np.random.default_rng(seed)
    base = 30 + 28 * np.asarray(y, dtype=np.int64)[:, None, None]
    img = np.clip(base + rng.integers(-20, 21, size=(len(y), size, size)), 0, 255).astype(np.uint8)
    img[:, : size // 4, : size // 4] = 255
    return np.repeat(img[..., None], 3, axis=3) if rgb else img


TEST_ARCH = "_evaltest_net"


def register_test_arch() -> str:
    """Register :data:`TEST_ARCH` (once) in the architecture registry and return its name."""
    from torch import nn

    from emolens.train import archs

    if TEST_ARCH not in archs._REGISTRY:

        @archs.register(TEST_ARCH)
        def _net(num_classes: int, in_channels: int, input_size: int, width: float,
                 dropout: float) -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(16, num_classes),
            )

    return TEST_ARCH


def make_split(name: str, n_per_class: int, labels: tuple[str, ...] = FER7, size: int = SIZE,
               seed: int = 0) -> Split:
    y = np.repeat(np.arange(len(labels)), n_per_class).astype(np.int64)
    return Split(name=name, images=make_images(y, size, seed), labels=y)


def make_dataset(labels: tuple[str, ...] = FER7, n_per_class: int = 6, size: int = SIZE,
                 name: str = "synthetic") -> FaceDataset:
    names = ("train", "val", "test")
    splits = {s: make_split(s, n_per_class, labels, size, seed=i) for i, s in enumerate(names)}
    return FaceDataset(name=name, labels=labels, splits=splits)


_TRAINED: dict[tuple[object, ...], bytes] = {}


def make_checkpoint(path: Path, arch: str = TEST_ARCH, labels: tuple[str, ...] = FER7, size: int = SIZE,
                    steps: int = 30, seed: int = 0) -> Path:
    """Train ``arch`` for a few Adam steps on generated data and save it as an emolens checkpoint.

    Training is deterministic, so each setting is trained once per test session and then copied.
    """
    key = (arch, labels, size, steps, seed)
    if key not in _TRAINED:
        tmp = path.with_name(path.name + ".train")
        _train_checkpoint(tmp, arch, labels, size, steps, seed)
        _TRAINED[key] = tmp.read_bytes()
        tmp.unlink()
    path.write_bytes(_TRAINED[key])
    return path


def _train_checkpoint(path: Path, arch: str, labels: tuple[str, ...], size: int, steps: int, seed: int) -> None:
    import torch

    register_test_arch()
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: more threads only fight over a busy CPU
    try:
        _fit(path, arch, labels, size, steps)
    finally:
        torch.set_num_threads(threads)


def _fit(path: Path, arch: str, labels: tuple[str, ...], size: int, steps: int) -> None:
    import torch

    from emolens.config import load_config
    from emolens.preprocess import to_model_input
    from emolens.train.archs import create_model
    from emolens.train.checkpoint import Checkpoint, save_checkpoint

    cfg = load_config(overrides={"model.arch": arch, "data.image_size": size, "data.dataset": "folder",
                                 "epochs": 1})
    meta = ModelMeta(labels=labels, input_size=(size, size), channels=1, mean=(0.3,), std=(0.25,),
                     architecture=arch, dataset="synthetic")
    model = create_model(arch, num_classes=len(labels), in_channels=1, input_size=size, dropout=0.3)
    split = make_split("train", 6, labels, size, seed=100)
    x = torch.from_numpy(to_model_input(split.images, meta.input_size, 1, meta.mean, meta.std))
    y = torch.from_numpy(split.labels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():  # settle the BN running statistics on the final weights
        for _ in range(8):
            model(x)
    model.eval()
    ckpt = Checkpoint(config=cfg, meta=meta, model_state=model.state_dict(), epoch=1,
                      history=[{"epoch": 1.0, "val_acc": 0.5}], best_metric=0.5)
    save_checkpoint(ckpt, path)


FOLDER_NAMES = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
                "sadness": "sad", "surprise": "surprise", "neutral": "neutral", "contempt": "contempt"}


def write_folder_dataset(root: Path, n_per_class: int = 4, size: int = SIZE, labels: tuple[str, ...] = FER7,
                         duplicates: int = 0) -> Path:
    """``root/{train,test}/<class>/*.png`` from :func:`make_split`; the first ``duplicates`` train images
    are also copied into test (pixel-identical, under their true class)."""
    from PIL import Image

    splits = {"train": make_split("train", n_per_class, labels, size, seed=1),
              "test": make_split("test", n_per_class, labels, size, seed=2)}
    for name, split in splits.items():
        for i, (img, k) in enumerate(zip(split.images, split.labels, strict=True)):
            folder = root / name / FOLDER_NAMES[labels[int(k)]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:04d}.png")
    train = splits["train"]
    for i in range(duplicates):
        Image.fromarray(train.images[i]).save(
            root / "test" / FOLDER_NAMES[labels[int(train.labels[i])]] / f"dup{i:04d}.png")
    return root

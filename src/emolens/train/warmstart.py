"""Start a run from another run's weights (``model.init``): transfer learning between label sets.

Every tensor of the checkpoint whose name and shape match the new model is copied; the rest (the
classifier, when the label sets differ in size) keep their fresh initialisation. The checkpoint must
come from the same architecture and width. A full ``best.pt`` and a compact snapshot both work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError
from ..fsio import file_sha256
from .checkpoint import load_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmStart:
    path: str
    sha256: str
    loaded: tuple[str, ...]
    skipped: tuple[str, ...]  # new-model tensors left at their initialisation

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "sha256": self.sha256, "loaded": len(self.loaded), "skipped": list(self.skipped)}


def warm_start(model: torch.nn.Module, path: str | Path, arch: str, width: float, labels: tuple[str, ...]) -> WarmStart:
    """Copy the matching tensors of checkpoint ``path`` into ``model`` (in place)."""
    path = Path(path)
    ckpt = load_checkpoint(path)  # CheckpointError when missing or unreadable
    src = ckpt.config.model
    if (src.arch, src.width) != (arch, width):
        raise ConfigError(f"model.init {path} is a {src.arch} at width {src.width}; this run trains a {arch} at "
                          f"width {width}: the weights cannot be reused")
    own = model.state_dict()
    loaded, skipped = [], []
    with torch.no_grad():
        for name, tensor in own.items():
            theirs = ckpt.model_state.get(name)
            if theirs is not None and theirs.shape == tensor.shape:
                tensor.copy_(theirs.to(tensor.dtype))
                loaded.append(name)
            else:
                skipped.append(name)
    weights = [n for n in loaded if n.endswith("weight")]
    if not weights:
        raise ConfigError(f"model.init {path}: no weight of it fits this model")
    sha = file_sha256(path)
    log.info("initialised from %s (%s, labels %s): %d tensors copied, %d left fresh (%s)", path, src.arch,
             ", ".join(ckpt.meta.labels), len(loaded), len(skipped), ", ".join(skipped) or "none")
    if tuple(ckpt.meta.labels) != tuple(labels) and not skipped:
        log.warning("model.init %s was trained on other labels (%s) but its classifier fits: it is reused as is",
                    path, ", ".join(ckpt.meta.labels))
    return WarmStart(str(path), sha, tuple(loaded), tuple(skipped))

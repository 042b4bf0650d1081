"""Knowledge distillation: a student learns from a fixed teacher's soft outputs plus the labels.

``distill.teacher`` names a trained model, an emolens checkpoint (``.pt``) or an exported ONNX model
(``.onnx``, run with ONNX Runtime), or several separated by commas: an ensemble, whose logits are
averaged (``teacher: a/best.pt, b/best.pt``), so that one fast student learns what several models agree
on. Each training batch, after augmentation and mixing, goes through the teacher too (no gradients;
bf16 autocast when the student trains in bf16), so the teacher sees exactly the images the student
sees. The loss is Hinton et al.'s::

    (1 - alpha) * CE(student, targets) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

where the targets are the run's own (one-hot FER2013 labels or FER+ vote distributions, smoothed
and mixed as configured). The teacher normalises the [0, 1] batch with its own mean and std, so it
may have been trained with other statistics; its labels, input size and channels must match the
student's. The teacher file's SHA-256 (an ensemble's: the SHA-256 of its members' in order) is kept
in the run's checkpoints so that a resumed run can refuse a teacher that changed under it.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DistillConfig
from ..errors import CheckpointError, ConfigError, ModelFormatError
from ..fsio import file_sha256
from ..modelmeta import ModelMeta
from .checkpoint import load_checkpoint
from .precision import autocast
from .tensors import normalize_batch


def check_config(cfg: DistillConfig) -> None:
    """ConfigError naming the first ``distill.*`` setting out of range."""
    if not 0 <= cfg.alpha <= 1:
        raise ConfigError(f"distill.alpha must be in [0, 1], got {cfg.alpha!r}")
    if not (math.isfinite(cfg.temperature) and cfg.temperature > 0):
        raise ConfigError(f"distill.temperature must be a positive number, got {cfg.temperature!r}")


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch (in fp32).

    The ``T^2`` keeps the gradient scale of the soft term independent of the temperature.
    """
    t = temperature
    log_p_student = F.log_softmax(student.float() / t, dim=1)
    log_p_teacher = F.log_softmax(teacher.float() / t, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * (t * t)



class Teacher:
    """A loaded teacher: ``teacher(x)`` maps a [0, 1] float batch (N, C, H, W) to logits (N, K) in fp32.

    Raises :class:`ConfigError` when the file is missing, unreadable or does not fit the student
    (other labels, input size or channels).
    """

    def __init__(self, path: str | Path, labels: tuple[str, ...], input_size: int, channels: int,
                 device: torch.device, precision: str, threads: int = 0) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise ConfigError(f"distill.teacher not found: {self.path}")
        self.device, self.precision = device, precision
        self._torch: torch.nn.Module | None = None
        self._onnx: Any = None
        try:
            if self.path.suffix == ".onnx":
                self.meta = self._load_onnx(threads)
            else:
                self.meta = self._load_torch()
        except (CheckpointError, ModelFormatError) as e:
            raise ConfigError(f"distill.teacher: {e}") from e
        self._check_fits(labels, input_size, channels)
        self._mean = torch.tensor(self.meta.mean, device=device)
        self._std = torch.tensor(self.meta.std, device=device)
        self.sha256 = file_sha256(self.path)

    def _load_torch(self) -> ModelMeta:
        ckpt = load_checkpoint(self.path)
        model = ckpt.build_model().to(self.device)
        if self.device.type == "cpu" and self.precision == "bf16":
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._torch = model.eval().requires_grad_(False)
        return ckpt.meta

    def _load_onnx(self, threads: int) -> ModelMeta:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(0, threads)
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own pybind types
            raise ModelFormatError(f"{self.path} is not a readable ONNX model: {str(e).strip()[:300]}") from e
        meta = ModelMeta.from_props(dict(sess.get_modelmeta().custom_metadata_map), source=str(self.path))
        self._onnx, self._input = sess, sess.get_inputs()[0].name
        return meta

    def _check_fits(self, labels: tuple[str, ...], input_size: int, channels: int) -> None:
        m = self.meta
        if m.task != "emotion":
            raise ConfigError(f"distill.teacher {self.path} is a {m.task} model, not an emotion model")
        if tuple(m.labels) != tuple(labels):
            raise ConfigError(f"distill.teacher {self.path} predicts {list(m.labels)}, the student {list(labels)}")
        if tuple(m.input_size) != (input_size, input_size) or m.channels != channels:
            raise ConfigError(f"distill.teacher {self.path} takes {m.channels}x{m.input_size[0]}x{m.input_size[1]}"
                              f" images, the student {channels}x{input_size}x{input_size}")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = normalize_batch(x.to(self.device), self._mean, self._std)
        if self._torch is not None:
            fmt = torch.channels_last if self.device.type == "cpu" and self.precision == "bf16" \
                else torch.contiguous_format
            with autocast(self.device, self.precision):
                logits = self._torch(z.contiguous(memory_format=fmt))
            return logits.float()
        out = self._onnx.run(None, {self._input: z.cpu().numpy().astype(np.float32)})[0]
        logits = torch.from_numpy(np.asarray(out, dtype=np.float32)).to(self.device)
        return logits if self.meta.output == "logits" else logits.clamp_min(1e-8).log()


class Ensemble:
    """Several teachers as one: ``ensemble(x)`` is the mean of the members' logits.

    Every member must fit the student (the same checks as a single :class:`Teacher`); ``path`` names
    them all and ``sha256`` changes when any member file changes.
    """

    def __init__(self, members: list[Teacher]) -> None:
        if not members:
            raise ConfigError("distill.teacher names no model")
        self.members = members
        self.path = Path(", ".join(str(m.path) for m in members))
        self.meta = members[0].meta
        self.sha256 = hashlib.sha256(",".join(m.sha256 for m in members).encode()).hexdigest()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.members[0](x)
        for m in self.members[1:]:
            out = out + m(x)
        return out / len(self.members)


def teacher_paths(spec: str) -> list[str]:
    """``"a.pt, b.onnx"`` -> ``["a.pt", "b.onnx"]``; ConfigError on an empty member (``"a.pt,,b.pt"``)."""
    parts = [p.strip() for p in spec.split(",")]
    if any(not p for p in parts):
        raise ConfigError(f"distill.teacher {spec!r} has an empty entry; separate the models with single commas")
    return parts


class Distiller:
    """The teacher and the loss mix of one run (built from ``cfg.distill`` by :meth:`from_config`)."""

    def __init__(self, cfg: DistillConfig, teacher: Teacher | Ensemble) -> None:
        check_config(cfg)
        self.cfg, self.teacher = cfg, teacher

    @classmethod
    def from_config(cls, cfg: DistillConfig, labels: tuple[str, ...], input_size: int, channels: int,
                    device: torch.device, precision: str, threads: int = 0) -> Distiller | None:
        """None when ``cfg.teacher`` is empty (no distillation)."""
        check_config(cfg)
        if not cfg.teacher.strip():
            return None
        members = [Teacher(p, labels, input_size, channels, device, precision, threads)
                   for p in teacher_paths(cfg.teacher)]
        return cls(cfg, members[0] if len(members) == 1 else Ensemble(members))

    def loss(self, hard_loss: torch.Tensor, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """The run's loss on its own targets mixed with the soft term against the teacher."""
        soft = distill_loss(student_logits, teacher_logits, self.cfg.temperature)
        return (1 - self.cfg.alpha) * hard_loss + self.cfg.alpha * soft

    def check_resumed(self, saved_sha256: str | None, where: Path) -> None:
        """CheckpointError when the run at ``where`` was distilled from another teacher file."""
        if saved_sha256 is not None and saved_sha256 != self.teacher.sha256:
            raise CheckpointError(f"{where} was distilled from another teacher (the file {self.teacher.path} "
                                  "changed since); resume with the same teacher or start a new --out folder")

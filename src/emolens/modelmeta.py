"""What a model file says about itself.

Every emolens model, checkpoint or ONNX, carries a :class:`ModelMeta`: its labels in output order,
input size, channels, normalisation and provenance. Inference reads it and never guesses. In ONNX
the fields live in ``metadata_props`` as strings (JSON for structured values), written by
:meth:`ModelMeta.to_props` and read back by :meth:`ModelMeta.from_props`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ModelFormatError

FORMAT = "emolens-model-v1"
TASKS = ("emotion", "keypoints")


@dataclass(frozen=True)
class ModelMeta:
    """Self-description of a trained model.

    ``mean`` and ``std`` apply to pixel values scaled to [0, 1], one entry per channel.
    ``input_size`` is (height, width). ``output`` says what the graph returns: ``logits`` or ``probs``.
    """

    labels: tuple[str, ...]
    input_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    architecture: str
    dataset: str
    task: str = "emotion"
    output: str = "logits"
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not self.labels:
            problems.append("labels is empty")
        if len(set(self.labels)) != len(self.labels):
            problems.append(f"labels repeat: {list(self.labels)}")
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            problems.append(f"input_size must be (height, width) >= 8, got {self.input_size}")
        if self.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            problems.append(f"mean/std need {self.channels} value(s), got {self.mean} / {self.std}")
        if any(s <= 0 for s in self.std):
            problems.append(f"std must be positive, got {self.std}")
        if self.task not in TASKS:
            problems.append(f"task must be one of {TASKS}, got {self.task!r}")
        if self.output not in ("logits", "probs"):
            problems.append(f"output must be 'logits' or 'probs', got {self.output!r}")
        if problems:
            raise ModelFormatError("invalid model metadata: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        try:
            return cls(
                labels=tuple(str(x) for x in d["labels"]),
                input_size=(int(d["input_size"][0]), int(d["input_size"][1])),
                channels=int(d["channels"]),
                mean=tuple(float(x) for x in d["mean"]),
                std=tuple(float(x) for x in d["std"]),
                architecture=str(d["architecture"]),
                dataset=str(d["dataset"]),
                task=str(d.get("task", "emotion")),
                output=str(d.get("output", "logits")),
                metrics=dict(d.get("metrics") or {}),
                extra=dict(d.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ModelFormatError(f"model metadata is incomplete or malformed: {e!r}") from e

    def replace(self, **changes: Any) -> ModelMeta:
        d = self.to_dict()
        d.update(changes)
        return ModelMeta.from_dict(d)

    def to_props(self) -> dict[str, str]:
        """String key/values for ONNX ``metadata_props``."""
        d = self.to_dict()
        props = {"emolens_format": FORMAT}
        for key, value in d.items():
            props[key] = value if isinstance(value, str) else json.dumps(value)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMeta:
        """Read metadata written by :meth:`to_props`; ``source`` names the file in errors."""
        if props.get("emolens_format") != FORMAT:
            raise ModelFormatError(
                f"{source} is not an emolens model (metadata 'emolens_format' is "
                f"{props.get('emolens_format')!r}, expected {FORMAT!r})"
            )
        missing = [k for k in ("labels", "input_size", "channels", "mean", "std") if k not in props]
        if missing:
            raise ModelFormatError(f"{source} metadata lacks {', '.join(missing)}")
        d: dict[str, Any] = {}
        for key, raw in props.items():
            if key == "emolens_format":
                continue
            if key in ("architecture", "dataset", "task", "output"):
                d[key] = raw
                continue
            try:
                d[key] = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ModelFormatError(f"{source} metadata {key!r} is not valid JSON: {raw[:60]!r}") from e
        d.setdefault("architecture", "unknown")
        d.setdefault("dataset", "unknown")
        return cls.from_dict(d)

"""The emotion distribution over many analysed images.

:class:`SummaryBuilder` takes :class:`~emolens.results.ImageResult` one at a time (so a stream of
thousands of images keeps memory flat) and :meth:`SummaryBuilder.build` returns an
:class:`EmotionSummary`: how many faces showed each emotion as their top emotion, their shares,
the mean probability of every label over all faces, and the positive/negative balance
(:data:`emolens.labels.VALENCE`). :func:`summarize` does both steps for an iterable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..labels import VALENCE
from ..results import ImageResult


@dataclass(frozen=True)
class EmotionSummary:
    """Emotion distribution over ``faces`` faces in ``images`` images.

    ``counts[label]`` is the number of faces whose top emotion is ``label``;
    ``mean_probabilities[label]`` the mean of that label's probability over all faces. Both hold
    every label in ``labels`` (the model's order), zeros included.
    """

    labels: tuple[str, ...]
    images: int
    images_with_faces: int
    faces: int
    counts: Mapping[str, int]
    mean_probabilities: Mapping[str, float]

    @property
    def shares(self) -> dict[str, float]:
        """Fraction of faces per top emotion (all zeros when there are no faces)."""
        return {lb: (self.counts[lb] / self.faces if self.faces else 0.0) for lb in self.labels}

    @property
    def top(self) -> str | None:
        """The most frequent top emotion (ties go to the earlier label), or None without faces."""
        if not self.faces:
            return None
        return max(self.labels, key=lambda lb: (self.counts[lb], -self.labels.index(lb)))

    @property
    def valence(self) -> dict[str, float]:
        """Shares of faces whose top emotion is positive, neutral (incl. surprise) or negative."""
        out = {"positive": 0.0, "neutral": 0.0, "negative": 0.0}
        if not self.faces:
            return out
        names = {1: "positive", 0: "neutral", -1: "negative"}
        for lb in self.labels:
            out[names[VALENCE.get(lb, 0)]] += self.counts[lb] / self.faces
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain types."""
        return {
            "images": self.images,
            "images_with_faces": self.images_with_faces,
            "faces": self.faces,
            "top": self.top,
            "counts": dict(self.counts),
            "shares": {k: round(v, 6) for k, v in self.shares.items()},
            "mean_probabilities": {k: round(v, 6) for k, v in self.mean_probabilities.items()},
            "valence": {k: round(v, 6) for k, v in self.valence.items()},
        }

    def describe(self) -> str:
        """One line for people, e.g. ``5 faces in 3 images: happiness 3 (60%), neutral 2 (40%)``."""
        head = f"{self.faces} face{'s' if self.faces != 1 else ''} in {self.images} image"
        head += "s" if self.images != 1 else ""
        if not self.faces:
            return head
        ranked = sorted((lb for lb in self.labels if self.counts[lb]), key=lambda lb: -self.counts[lb])
        parts = [f"{lb} {self.counts[lb]} ({self.shares[lb]:.0%})" for lb in ranked]
        return f"{head}: " + ", ".join(parts)


    def describe_means(self) -> str:
        """Mean probabilities, highest first, e.g. ``happiness 0.52, neutral 0.21, ...`` ('' without faces)."""
        if not self.faces:
            return ""
        ranked = sorted(self.labels, key=lambda lb: -self.mean_probabilities[lb])
        return ", ".join(f"{lb} {self.mean_probabilities[lb]:.2f}" for lb in ranked)


class SummaryBuilder:
    """Accumulates results one by one; labels not given up front are appended as they appear."""

    def __init__(self, labels: Sequence[str] = ()) -> None:
        self._labels: list[str] = list(dict.fromkeys(labels))
        self._counts: dict[str, int] = dict.fromkeys(self._labels, 0)
        self._prob_sums: dict[str, float] = dict.fromkeys(self._labels, 0.0)
        self._images = 0
        self._images_with_faces = 0
        self._faces = 0

    def _ensure(self, label: str) -> None:
        if label not in self._counts:
            self._labels.append(label)
            self._counts[label] = 0
            self._prob_sums[label] = 0.0

    def add(self, result: ImageResult) -> None:
        """Count one image and all its faces."""
        self._images += 1
        if result.faces:
            self._images_with_faces += 1
        for face in result.faces:
            self._faces += 1
            for label, p in face.probabilities.items():
                self._ensure(label)
                self._prob_sums[label] += float(p)
            self._ensure(face.emotion)
            self._counts[face.emotion] += 1

    def build(self) -> EmotionSummary:
        """The summary of everything added so far."""
        n = self._faces
        return EmotionSummary(
            labels=tuple(self._labels),
            images=self._images,
            images_with_faces=self._images_with_faces,
            faces=n,
            counts=dict(self._counts),
            mean_probabilities={lb: (s / n if n else 0.0) for lb, s in self._prob_sums.items()},
        )


def summarize(results: Iterable[ImageResult], labels: Sequence[str] = ()) -> EmotionSummary:
    """The :class:`EmotionSummary` of ``results``; ``labels`` fixes the label order (and zero rows)."""
    builder = SummaryBuilder(labels)
    for result in results:
        builder.add(result)
    return builder.build()

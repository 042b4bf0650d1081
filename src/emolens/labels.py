"""Emotion label sets and the normalisation of the many names datasets use for them.

Indices follow the datasets: FER2013's 0..6 order for the 7-class set; FER+ adds contempt as index 7.
"""

from __future__ import annotations

import re

from .errors import DatasetError

FER7: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FERPLUS8: tuple[str, ...] = (*FER7, "contempt")

LABEL_SETS: dict[str, tuple[str, ...]] = {"fer7": FER7, "ferplus8": FERPLUS8}

# Every spelling seen in public FER datasets and folder layouts, mapped to our canonical names.
_SYNONYMS: dict[str, str] = {
    "anger": "anger",
    "angry": "anger",
    "mad": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "smile": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "surprise": "surprise",
    "surprised": "surprise",
    "suprise": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
    "contempt": "contempt",
    "contemptuous": "contempt",
}


def canonical_label(name: str) -> str | None:
    """The canonical emotion name for a dataset's spelling, or None when it is not an emotion we know.

    >>> canonical_label("Angry")
    'anger'
    """
    key = re.sub(r"^\d+[\s._-]*", "", name.strip().lower())  # "3_happy", "0 angry"
    return _SYNONYMS.get(key.replace("-", "_").replace(" ", "_"))


def label_set(name: str) -> tuple[str, ...]:
    """A label set by name (``fer7`` or ``ferplus8``)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise DatasetError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}") from None


VALENCE: dict[str, int] = {
    "happiness": 1,
    "surprise": 0,
    "neutral": 0,
    "anger": -1,
    "disgust": -1,
    "fear": -1,
    "sadness": -1,
    "contempt": -1,
}
"""Sign of each emotion for positive/negative summaries (surprise counted as neither)."""

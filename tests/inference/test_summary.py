import json

import pytest

from emolens.inference.summary import SummaryBuilder, summarize
from emolens.labels import FER7
from emolens.results import FaceResult, ImageResult


def _face(emotion, p=0.6, labels=FER7):
    rest = (1.0 - p) / (len(labels) - 1)
    probs = {lb: (p if lb == emotion else rest) for lb in labels}
    return FaceResult(box=(0, 0, 10, 10), detection_score=1.0, emotion=emotion, probabilities=probs)


def _image(*emotions, source="a.jpg"):
    return ImageResult(source=source, width=20, height=20, faces=tuple(_face(e) for e in emotions))


def test_counts_shares_and_means():
    s = summarize([_image("happiness", "happiness"), _image("anger"), _image()], labels=FER7)
    assert s.images == 3 and s.images_with_faces == 2 and s.faces == 3
    assert s.labels == FER7
    assert s.counts["happiness"] == 2 and s.counts["anger"] == 1 and s.counts["fear"] == 0
    assert s.shares["happiness"] == pytest.approx(2 / 3)
    assert sum(s.shares.values()) == pytest.approx(1.0)
    assert sum(s.mean_probabilities.values()) == pytest.approx(1.0)
    assert s.mean_probabilities["happiness"] == pytest.approx((0.6 + 0.6 + 0.4 / 6) / 3)
    assert s.top == "happiness"
    assert s.valence["positive"] == pytest.approx(2 / 3)
    assert s.valence["negative"] == pytest.approx(1 / 3)


def test_empty_and_faceless():
    s = summarize([])
    assert s.faces == 0 and s.top is None and s.labels == ()
    s = summarize([_image(), _image()], labels=FER7)
    assert s.images == 2 and s.faces == 0
    assert all(v == 0 for v in s.shares.values())
    assert all(v == 0 for v in s.mean_probabilities.values())
    assert s.describe() == "0 faces in 2 images"


def test_labels_discovered_when_not_given_and_tie_goes_to_first_label():
    s = summarize([_image("sadness", "anger")])
    assert s.labels == FER7  # order of the probabilities mapping
    assert s.top == "anger"


def test_streaming_builder_matches_summarize():
    results = [_image("neutral"), _image("surprise", "neutral"), _image("fear")]
    b = SummaryBuilder(FER7)
    for r in results:
        b.add(r)
    assert b.build() == summarize(results, FER7)


def test_to_dict_is_json_and_describe_ranks():
    s = summarize([_image("happiness", "happiness", "neutral")], labels=FER7)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["faces"] == 3 and d["counts"]["happiness"] == 2 and d["top"] == "happiness"
    assert set(d) >= {"shares", "mean_probabilities", "valence", "images_with_faces"}
    assert s.describe() == "3 faces in 1 image: happiness 2 (67%), neutral 1 (33%)"
    assert s.describe_means().startswith("happiness 0.42, neutral 0.24, anger 0.07")
    assert summarize([]).describe_means() == ""

"""The page's ad timing: checks, and recording time -> ad time (stalls left out, exact at segment ends)."""

from __future__ import annotations

import pandas as pd
import pytest

from emolens.errors import InvalidInput
from emolens.studies.timing import parse_timing, to_ad_time

ADS = {"a": ("spot_a", 3.0), "b": ("spot_b", 2.0)}


def entry(ad: str, *segments: list[float], completed: bool = True) -> dict:
    return {"ad_id": ad, "segments": [list(s) for s in segments], "completed": completed}


def test_parse_keeps_segments_in_order() -> None:
    t = parse_timing([entry("a", [1.0, 2.0, 0.0, 1.0], [2.5, 4.5, 1.0, 3.0]), entry("b", [5.0, 7.0, 0.0, 2.0])],
                     ADS, ["a", "b"])
    assert [x.ad_id for x in t] == ["a", "b"]
    assert t[0].rec_start == 1.0 and t[0].rec_end == 4.5 and t[0].completed
    assert t[0].to_dict()["segments"][1] == [2.5, 4.5, 1.0, 3.0]


@pytest.mark.parametrize(("raw", "words"), [
    ("nope", "must be a list"),
    ([entry("zzz", [0, 1, 0, 1])], "does not show"),
    ([entry("a", [0, 1, 0, 1]), entry("a", [2, 3, 0, 1])], "twice"),
    ([entry("a")], "non-empty"),
    ([entry("a", [0, 1, 0])], "rec_start, rec_end"),
    ([entry("a", [2, 1, 0, 1])], "backwards"),
    ([entry("a", [0, 1, 0, float("nan")])], "finite"),
    ([entry("a", [0, 9, 0, 9])], "past the ad's"),
    ([entry("a", [0, 2, 0, 2], [1, 2, 2, 3])], "before the previous one"),
    ([entry("a", [0, 3, 0, 3]), entry("b", [2, 4, 0, 2])], "before the previous ad"),
    ([entry("b", [0, 2, 0, 2]), entry("a", [3, 6, 0, 3])], "not in the order"),
])
def test_parse_names_each_problem(raw: object, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_timing(raw, ADS, ["a", "b"])


def test_an_ad_never_reached_may_be_missing() -> None:
    assert [t.ad_id for t in parse_timing([entry("a", [0, 3, 0, 3])], ADS, ["a", "b"])] == ["a"]


def test_to_ad_time_drops_stalls_and_maps_each_segment() -> None:
    # the ad played 1.0-2.0 s of the recording (ad 0-1 s), stalled 2.0-2.5 s, then played 2.5-4.5 s (ad 1-3 s)
    timing = parse_timing([entry("a", [1.0, 2.0, 0.0, 1.0], [2.5, 4.5, 1.0, 3.0])], ADS, ["a"])[0]
    frames = pd.DataFrame({"t": [0.5, 1.0, 1.5, 2.2, 2.5, 3.5, 4.4, 4.6], "v": range(8)})
    out = to_ad_time(frames, timing)
    assert out["v"].tolist() == [1, 2, 4, 5, 6]  # before, stalled and after: dropped
    assert out["t"].tolist() == pytest.approx([0.0, 0.5, 1.0, 2.0, 2.9])


def test_to_ad_time_rescales_a_segment_whose_clocks_drift() -> None:
    timing = parse_timing([entry("b", [10.0, 12.2, 0.0, 2.0])], ADS, ["b"])[0]
    out = to_ad_time(pd.DataFrame({"t": [10.0, 11.1, 12.19]}), timing)
    assert out["t"].tolist() == pytest.approx([0.0, 1.0, 1.99090909])

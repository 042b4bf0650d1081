import pytest

from emolens.errors import InvalidInput
from emolens.inference.detect import Detection
from emolens.video.regions import RegionDetector, plan_region

from .synth import SquareDetector, draw_squares


def test_plan_region_window_and_scale() -> None:
    plan = plan_region((100, 50, 40, 40), (360, 640), expand=0.5, face_px=48)
    assert plan is not None
    assert plan.x0 <= 80 and plan.y0 <= 30 and plan.x1 >= 160 and plan.y1 >= 110  # the face plus half a side
    assert plan.x1 - plan.x0 <= 80 + 2 * 8 / plan.scale + 1  # at most one lattice step more per side
    assert 48 / 40 / 2**0.125 <= plan.scale <= 48 / 40 * 2**0.125  # nearest quarter octave
    clipped = plan_region((-10, -10, 40, 40), (360, 640), expand=0.5, face_px=48)
    assert clipped is not None and clipped.x0 == 0 and clipped.y0 == 0
    assert plan_region((1000, 1000, 40, 40), (360, 640), expand=0.5, face_px=48) is None


def test_plan_region_snaps_so_a_still_face_keeps_its_window() -> None:
    """Boxes that differ by a few pixels (detector noise) share a handful of windows, not one each."""
    perturbed = [(200 + dx, 100 + dy, 80 + dw, 80 + dw) for dx in range(4) for dy in range(4) for dw in range(3)]
    plans = [plan_region(box, (480, 720), 0.5, 64) for box in perturbed]
    assert all(p is not None for p in plans)
    assert len({p.scale for p in plans if p}) == 1
    assert len(set(plans)) <= 4 < len(perturbed)


def test_key_frames_follow_the_interval() -> None:
    det = RegionDetector(SquareDetector(), full_interval_s=0.5)
    img = draw_squares(120, 160, [(20, 20, 30, "all")])
    fulls = [det.detect(img, t, [(20, 20, 30, 30)])[1] for t in (0.0, 0.2, 0.49, 0.5, 0.7, 1.05)]
    assert fulls == [True, False, False, True, False, True]
    assert det.full_runs == 3 and det.region_runs == 3
    always = RegionDetector(SquareDetector(), full_interval_s=0.0)
    assert all(always.detect(img, t, [])[1] for t in (0.0, 0.01, 0.02))


def test_region_search_finds_the_moved_face_in_frame_pixels() -> None:
    sq = SquareDetector()
    det = RegionDetector(sq, full_interval_s=10.0, roi_face_px=24)
    first = draw_squares(240, 320, [(100, 80, 40, "all"), (250, 150, 30, "all")])
    found, full = det.detect(first, 0.0, [])
    assert full and [d.box for d in found] == [(100, 80, 40, 40), (250, 150, 30, 30)]
    moved = draw_squares(240, 320, [(108, 84, 40, "all"), (246, 150, 30, "all")])
    found, full = det.detect(moved, 0.04, [(100, 80, 40, 40), (250, 150, 30, 30)])
    assert not full
    for d, want in zip(found, [(108, 84, 40, 40), (246, 150, 30, 30)], strict=True):
        assert all(abs(a - b) <= 2 for a, b in zip(d.box, want, strict=True)), (d.box, want)
    # the detector saw small rescaled windows, not the frame
    assert all(max(shape) <= 2 * 24 + 2 * 8 + 4 for shape in sq.calls[1:])  # face + margins + lattice


def test_new_face_waits_for_the_next_key_frame() -> None:
    det = RegionDetector(SquareDetector(), full_interval_s=0.5)
    empty = draw_squares(120, 160, [])
    assert det.detect(empty, 0.0, [])[0] == []
    face = draw_squares(120, 160, [(40, 40, 30, "all")])
    assert det.detect(face, 0.1, [])[0] == []  # no track near it, not a key frame
    assert len(det.detect(face, 0.5, [])[0]) == 1


def test_small_faces_and_duplicates_are_dropped() -> None:
    class Two:
        name = "two"

        def detect(self, rgb):
            return [Detection((10, 10, 30, 30), 0.9), Detection((11, 10, 30, 30), 0.8), Detection((80, 10, 8, 8), 0.9)]

    found, _ = RegionDetector(Two(), min_face=16).detect(draw_squares(60, 120, []), 0.0, [])
    assert [d.box for d in found] == [(10, 10, 30, 30)]


def test_bad_options() -> None:
    with pytest.raises(InvalidInput):
        RegionDetector(SquareDetector(), roi_face_px=4)


def test_a_cut_brings_a_key_frame_at_once() -> None:
    det = RegionDetector(SquareDetector(), full_interval_s=10.0)
    det.detect(draw_squares(120, 160, [(20, 20, 30, "all")]), 0.0, [])
    same = draw_squares(120, 160, [(21, 20, 30, "all")])
    assert det.detect(same, 0.04, [(20, 20, 30, 30)])[1] is False
    new_shot = 255 - same  # everything changed
    assert det.detect(new_shot, 0.08, [(20, 20, 30, 30)])[1] is True
    assert det.cuts == 1
    never = RegionDetector(SquareDetector(), full_interval_s=10.0, cut_threshold=0.0)
    never.detect(same, 0.0, [])
    assert never.detect(new_shot, 0.04, [])[1] is False


def test_a_requested_key_frame_comes_early_but_not_at_once() -> None:
    det = RegionDetector(SquareDetector(), full_interval_s=1.0)
    face = draw_squares(120, 160, [(20, 20, 30, "all")])
    det.detect(face, 0.0, [])
    det.request_key_frame()
    assert det.detect(face, 0.1, [(20, 20, 30, 30)])[1] is False  # not before full_interval / 4
    assert det.detect(face, 0.3, [(20, 20, 30, 30)])[1] is True
    assert det.detect(face, 0.4, [(20, 20, 30, 30)])[1] is False  # served: back to the interval

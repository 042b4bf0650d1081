import numpy as np

from emolens.results import FrameResult
from emolens.video.writer import blur_faces, draw_frame

from .sequences import face


def checkerboard(h: int = 120, w: int = 160) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.repeat((((yy // 2 + xx // 2) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def test_blur_hides_detail_inside_faces_only() -> None:
    img = checkerboard()
    out = blur_faces(img, [face(1, 0.9, x=40)])  # box (40, 20, 30, 30)
    assert out.shape == img.shape and out is not img
    inside = out[25:45, 45:65].astype(int)
    assert inside.std() < 0.2 * img[25:45, 45:65].std()  # the fine pattern is gone
    assert np.array_equal(out[80:, :], img[80:, :])  # far from the face: untouched
    assert np.array_equal(img, checkerboard())  # input not modified


def test_draw_frame_marks_faces_and_keeps_size() -> None:
    img = np.full((120, 160, 3), 40, np.uint8)
    frame = FrameResult(3, 1.5, 160, 120, (face(7, 0.9, x=40),), classified=False)
    out = draw_frame(img, frame)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.any(out != img)
    assert np.array_equal(img, np.full((120, 160, 3), 40, np.uint8))

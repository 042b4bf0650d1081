"""A tiny hand-made sequence of frame results whose summary is worked out by hand in the tests.

Five frames 0.1 s apart, labels ``(a, b)``:

========  =====  ==========  ==============  ==============
frame     time   classified  track 1 (p_a)   track 2 (p_a)
========  =====  ==========  ==============  ==============
0         0.0    yes         0.9 (a)         -
1         0.1    no          0.6 (a)         -
2         0.2    yes         0.2 (b)         -
3         0.3    yes         0.3 (b)         0.1 (b)
4         0.4    yes         -               0.8 (a)
========  =====  ==========  ==============  ==============
"""

from __future__ import annotations

from emolens.results import FaceResult, FrameResult

LABELS = ("a", "b")


def face(tid: int, pa: float, x: int = 10) -> FaceResult:
    return FaceResult(
        box=(x, 20, 30, 30), detection_score=0.9, emotion="a" if pa >= 0.5 else "b",
        probabilities={"a": pa, "b": 1.0 - pa}, track_id=tid,
    )


def sequence() -> list[FrameResult]:
    t1 = [0.9, 0.6, 0.2, 0.3, None]
    t2 = [None, None, None, 0.1, 0.8]
    frames = []
    for i in range(5):
        faces = []
        if t1[i] is not None:
            faces.append(face(1, t1[i], x=10 + i))
        if t2[i] is not None:
            faces.append(face(2, t2[i], x=100 - i))
        frames.append(FrameResult(i, round(0.1 * i, 10), 160, 120, tuple(faces), classified=i != 1))
    return frames

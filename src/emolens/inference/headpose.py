"""Head pose (yaw, pitch, roll in degrees) from five facial landmarks, and the ``looking`` test.

``estimate_pose`` fits a generic 3D face (:data:`MODEL_POINTS`: eye centres, nose tip, mouth
corners, in proportions taken from anthropometric averages: 63 mm between the pupils, the nose tip
about 22 mm in front of the eyes and 53% of the way down from the eye line to the mouth) to the
five image points with ``solvePnP`` (:func:`emolens.imgops.solve_pnp`), for a pinhole camera whose
focal length is the image's longer side (a 53-degree field of view, a typical webcam) and whose centre
is the image centre.

Conventions, all as seen in the image: ``yaw`` > 0 when the head turns towards the image's right
(the subject's left), ``pitch`` > 0 when the head tilts up, ``roll`` > 0 for a counter-clockwise
tilt (the same sign as the keypoint roll). Yaw and pitch are measured from the line of sight between
the face and the camera, not from the camera's axis: a face at the edge of the picture that faces
the camera has yaw 0 (in camera axes it would be turned by up to half the field of view), so
``looking`` means the same wherever the viewer sits in the frame. A face looking straight into the
camera has (0, 0, 0). A mirrored image gives the opposite yaw and roll and the same pitch (the model and the
camera are symmetric). Accuracy against 68-landmark poses and the sign checks are measured by
``bench/headpose.py`` and reported in MODEL_CARD.md.

Pure functions, no state: used by the engine for every face and by the benchmarks alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import imgops
from ..errors import InvalidInput

Point = tuple[float, float]

FIVE = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""The five points, named as seen in the image (``left_eye`` is the image-left one)."""

MODEL_POINTS = np.array(
    [
        [-160.0, -170.0, 115.0],  # image-left eye centre (the subject's right eye)
        [160.0, -170.0, 115.0],  # image-right eye centre
        [0.0, 0.0, 0.0],  # nose tip
        [-150.0, 150.0, 130.0],  # image-left mouth corner
        [150.0, 150.0, 130.0],  # image-right mouth corner
    ]
)
"""The generic face in camera axes when it looks straight into the camera: x to the image's right, y down,
z away from the camera, origin at the nose tip; units of 1/5 mm (320 units between the pupils)."""

_KEYPOINT_NAMES = {  # the keypoint model's subject-side names -> image-side names (subject's left = image right)
    "left_eye": ("right_eye_center",),
    "right_eye": ("left_eye_center",),
    "nose": ("nose_tip",),
    "mouth_left": ("mouth_right_corner",),
    "mouth_right": ("mouth_left_corner",),
}


@dataclass(frozen=True)
class HeadPose:
    """Yaw, pitch and roll in degrees (see the module docstring for the signs)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class AttentionLimits:
    """A face is ``looking`` (towards the camera, so at a screen beside it) when ``|yaw| <= max_yaw`` and
    ``|pitch| <= max_pitch``. Defaults: 30 and 25 degrees, wide enough for a viewer watching a screen
    below or beside a webcam, narrow enough that a head turned to a phone or a neighbour is not."""

    max_yaw: float = 30.0
    max_pitch: float = 25.0

    def __post_init__(self) -> None:
        for name in ("max_yaw", "max_pitch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 90:
                raise InvalidInput(f"attention {name} must be in (0, 90] degrees, got {v!r}")

    def looking(self, pose: HeadPose | None) -> bool | None:
        """True/False for a pose, None when there is none."""
        if pose is None:
            return None
        return abs(pose.yaw) <= self.max_yaw and abs(pose.pitch) <= self.max_pitch


def five_points(marks: Mapping[str, Sequence[float]] | None) -> np.ndarray | None:
    """The five points ``(5, 2)`` in :data:`FIVE` order from a detector's landmarks (image-side names) or
    the keypoint model's (subject-side names such as ``left_eye_center``); None when any is missing."""
    if not marks:
        return None
    out = []
    for name in FIVE:
        p = marks.get(name)
        if p is None:
            p = next((marks[k] for k in _KEYPOINT_NAMES[name] if k in marks), None)
        if p is None:
            return None
        out.append((float(p[0]), float(p[1])))
    return _by_image_side(np.array(out, dtype=np.float64))


def _by_image_side(pts: np.ndarray) -> np.ndarray | None:
    """``pts`` with the eyes and mouth corners ordered image-left first (as a mirror image needs); None
    unless it is a finite ``(5, 2)`` array."""
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        return None
    if pts[0, 0] > pts[1, 0]:
        pts = pts[[1, 0, 2, 4, 3]]
    return pts


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """The assumed pinhole camera for an image of ``(height, width)``: focal = the longer side, centre = middle."""
    h, w = image_size
    f = float(max(h, w))
    return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])


def estimate_pose(points: np.ndarray | Mapping[str, Sequence[float]] | None,
                  image_size: tuple[int, int]) -> HeadPose | None:
    """The head pose from five points (an array ``(5, 2)`` in :data:`FIVE` order, or a landmark mapping),
    or None when the points are missing or degenerate (eyes less than 2 px apart, a failed fit)."""
    if isinstance(points, np.ndarray):
        pts = _by_image_side(np.asarray(points, dtype=np.float64))
    else:
        pts = five_points(points)
    if pts is None:
        return None
    iod = float(np.hypot(*(pts[1] - pts[0])))
    if iod < 2.0:
        return None
    k = camera_matrix(image_size)
    f = k[0, 0]
    z = f * 320.0 / iod  # distance at which the model's pupils are iod pixels apart
    guess_t = np.array([[(pts[2, 0] - k[0, 2]) * z / f], [(pts[2, 1] - k[1, 2]) * z / f], [z]])
    ok, rvec, tvec = imgops.solve_pnp(MODEL_POINTS, pts, k, np.zeros((3, 1)), guess_t)
    if not ok or not np.isfinite(rvec).all() or not np.isfinite(tvec).all() or float(tvec[2, 0]) <= 0:
        return None
    r = imgops.rodrigues(rvec)
    return pose_from_rotation(sight_frame(tvec.reshape(3)).T @ r)


def sight_frame(position: np.ndarray) -> np.ndarray:
    """The rotation from line-of-sight axes to camera axes for a head at ``position`` (camera axes): in
    line-of-sight axes a face looking at the camera faces along -z, as a centred frontal face does."""
    to_camera = -np.asarray(position, dtype=np.float64)
    yaw = math.atan2(to_camera[0], -to_camera[2])
    pitch = math.atan2(-to_camera[1], math.hypot(to_camera[0], to_camera[2]))
    return _ry(yaw) @ _rx(pitch)


def pose_from_rotation(r: np.ndarray) -> HeadPose:
    """Yaw, pitch, roll of a model-to-camera rotation (camera axes: x right, y down, z forward), the
    inverse of :func:`rotation`: yaw and pitch say where the face points, roll is the turn about that
    direction."""
    facing = r @ np.array([0.0, 0.0, -1.0])  # where the face points (towards the camera when frontal)
    yaw = math.atan2(facing[0], -facing[2])
    pitch = math.atan2(-facing[1], math.hypot(facing[0], facing[2]))
    m = (_ry(yaw) @ _rx(pitch)).T @ r  # what is left is the roll about the view axis
    roll = math.atan2(m[0, 1], m[0, 0])
    return HeadPose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model-to-camera rotation of a pose in degrees: roll about the view axis, then pitch about the
    horizontal axis, then yaw about the vertical axis (:func:`pose_from_rotation` inverts it)."""
    return _ry(math.radians(yaw)) @ _rx(math.radians(pitch)) @ _rz(math.radians(roll))


def _ry(a: float) -> np.ndarray:  # yaw: a positive angle turns the face towards +x (the image's right)
    return np.array([[math.cos(a), 0.0, -math.sin(a)], [0.0, 1.0, 0.0], [math.sin(a), 0.0, math.cos(a)]])


def _rx(a: float) -> np.ndarray:  # pitch: a positive angle turns the face towards -y (up)
    return np.array([[1.0, 0.0, 0.0], [0.0, math.cos(a), math.sin(a)], [0.0, -math.sin(a), math.cos(a)]])


def _rz(a: float) -> np.ndarray:  # roll: a positive angle turns the eye line counter-clockwise on screen
    return np.array([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def project(pose: HeadPose, image_size: tuple[int, int], distance: float = 3000.0,
            offset: Point = (0.0, 0.0)) -> np.ndarray:
    """The five model points ``(5, 2)`` of a head with ``pose`` (relative to its line of sight) at ``distance``
    model units in front of the camera, shifted by ``offset`` pixels from the image centre (for tests
    and benchmarks)."""
    k = camera_matrix(image_size)
    f = k[0, 0]
    t = np.array([offset[0] * distance / f, offset[1] * distance / f, distance])
    cam = MODEL_POINTS @ (sight_frame(t) @ rotation(pose.yaw, pose.pitch, pose.roll)).T + t
    return np.stack([k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2], k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]], 1)

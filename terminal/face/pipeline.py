"""The face pipeline: HOG detection on a small downscale, 5-point landmarks, quality gate, ResNet descriptor.

Detection runs on a ~320x240 grayscale copy (upsample 1), which is where dlib's HOG is fast; the
landmarks are then fitted on the full-resolution image, so the aligned 150x150 chip the ResNet sees is
as sharp as the camera allows. The expensive descriptor (~100 ms) is computed only for a face that
passes the quality gate (large, sharp and frontal enough), and only for the largest face. Raw dlib's
chain computes it for every detection, usable or not.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from terminal.face.models import LANDMARKS_5, RESNET, import_dlib, model_path

#: Pixels of the detection copy (320 x 240); larger photos are shrunk to this area, smaller ones kept.
DETECT_AREA = 320 * 240
CHIP_SIZE = 150
CHIP_PADDING = 0.25

Vector = npt.NDArray[np.float32]
Points = npt.NDArray[np.float64]


@dataclass(frozen=True)
class QualityPolicy:
    """What makes a face usable. ``min_eye_px``: distance between eye centres in original pixels;
    ``min_sharpness``: variance of the Laplacian of the aligned gray chip; ``max_yaw``: nose offset from
    the eyes' midpoint along the eye line, in eye distances (0 = frontal); ``max_roll``: head tilt, degrees.
    """

    min_eye_px: float
    min_sharpness: float
    max_yaw: float
    max_roll: float = 30.0


#: At the gate: a child in front of the camera, looking roughly at it.
GATE_QUALITY = QualityPolicy(min_eye_px=24.0, min_sharpness=20.0, max_yaw=0.30)
#: Enrolment photos become the reference: stricter.
ENROL_QUALITY = QualityPolicy(min_eye_px=36.0, min_sharpness=60.0, max_yaw=0.20, max_roll=20.0)
#: ``kgate face identify`` on arbitrary photos: take what a person could still recognise.
IDENTIFY_QUALITY = QualityPolicy(min_eye_px=12.0, min_sharpness=0.0, max_yaw=0.45, max_roll=45.0)


@dataclass
class Face:
    """One detected face. ``box``: (left, top, right, bottom) in original pixels; ``landmarks``: 5x2.

    ``problem`` is ``None`` when the face passed the quality policy, else the reason (a message key
    such as ``"too_small"``); ``descriptor`` is set only for a face that passed and was described.
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: Points
    eye_px: float
    yaw: float
    roll: float
    sharpness: float = 0.0
    problem: str | None = None
    descriptor: Vector | None = None
    chip: Any = field(default=None, repr=False)

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)


@dataclass
class Analysis:
    """All faces found in one image, largest first, and the time each stage took (milliseconds)."""

    faces: list[Face]
    detect_ms: float = 0.0
    describe_ms: float = 0.0

    @property
    def best(self) -> Face | None:
        return self.faces[0] if self.faces else None


def pose(points: Points) -> tuple[float, float, float]:
    """(eye distance px, yaw, roll degrees) from dlib's 5 points: 0-1 one eye, 2-3 the other, 4 nose."""
    eye_a = points[0:2].mean(axis=0)
    eye_b = points[2:4].mean(axis=0)
    axis = eye_b - eye_a
    dist = float(np.hypot(axis[0], axis[1]))
    if dist < 1e-6:
        return 0.0, 1.0, 0.0
    unit = axis / dist
    yaw = float(np.dot(points[4] - (eye_a + eye_b) / 2, unit)) / dist
    roll = math.degrees(math.atan2(abs(axis[1]), abs(axis[0])))
    return dist, yaw, roll


def sharpness(gray: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian: low for blurred or upscaled faces."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


class FacePipeline:
    """dlib's models, loaded once (about a second); thread-safe through one lock around dlib calls."""

    def __init__(self) -> None:
        dlib: Any = import_dlib()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(model_path(LANDMARKS_5)))
        self._resnet = dlib.face_recognition_model_v1(str(model_path(RESNET)))
        self._lock = threading.Lock()

    # -- stages ---------------------------------------------------------------------------------------
    def detect(self, rgb: npt.NDArray[np.uint8], policy: QualityPolicy) -> list[Face]:
        """Faces in ``rgb`` (HOG on the small copy, landmarks at full size), largest first, with
        ``problem`` set for those that fail ``policy`` (the chip-based sharpness is checked later)."""
        height, width = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        scale = min(1.0, math.sqrt(DETECT_AREA / float(width * height)))
        small = (
            gray
            if scale >= 1.0
            else cv2.resize(
                gray,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
        )
        with self._lock:
            rects, scores, _ = self._detector.run(small, 1, 0.0)
        faces: list[Face] = []
        for rect, score in zip(rects, scores, strict=True):
            box = (
                max(0, round(rect.left() / scale)),
                max(0, round(rect.top() / scale)),
                min(width, round((rect.right() + 1) / scale)),
                min(height, round((rect.bottom() + 1) / scale)),
            )
            full = self._dlib.rectangle(*box)
            with self._lock:
                shape = self._landmarks(gray, full)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            eye_px, yaw, roll = pose(points)
            face = Face(box, float(score), points, eye_px, yaw, roll)
            face.chip = shape
            face.problem = _pose_problem(face, policy)
            faces.append(face)
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def describe(
        self, rgb: npt.NDArray[np.uint8], face: Face, policy: QualityPolicy, jitters: int = 1
    ) -> Vector | None:
        """Align the face, check its sharpness, then compute its 128-d descriptor (``None`` if refused)."""
        if face.problem is not None:
            return None
        with self._lock:
            chip = self._dlib.get_face_chip(rgb, face.chip, size=CHIP_SIZE, padding=CHIP_PADDING)
        face.sharpness = sharpness(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY))
        if face.sharpness < policy.min_sharpness:
            face.problem = "blurred"
            return None
        with self._lock:
            vector = self._resnet.compute_face_descriptor(chip, jitters)
        face.descriptor = np.asarray(vector, dtype=np.float32)
        return face.descriptor

    def analyse(
        self, rgb: npt.NDArray[np.uint8], policy: QualityPolicy = GATE_QUALITY, jitters: int = 1
    ) -> Analysis:
        """Detect every face and describe only the largest one, if it is usable."""
        start = time.perf_counter()
        faces = self.detect(rgb, policy)
        mid = time.perf_counter()
        if faces:
            self.describe(rgb, faces[0], policy, jitters)
        end = time.perf_counter()
        return Analysis(faces, (mid - start) * 1000.0, (end - mid) * 1000.0)


def _pose_problem(face: Face, policy: QualityPolicy) -> str | None:
    if face.eye_px < policy.min_eye_px:
        return "too_small"
    if abs(face.yaw) > policy.max_yaw or face.roll > policy.max_roll:
        return "not_frontal"
    return None

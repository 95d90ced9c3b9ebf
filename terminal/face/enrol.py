"""Enrolment: photos of a consenting child -> quality-checked templates in the encrypted store.

All or nothing: every photo must pass (exactly one face, big enough, sharp, frontal) before anything
is stored, so a refused photo never leaves half an enrolment behind. At the gate, staff enrol from the
terminal's own camera (:func:`enrol_from_camera`): frames are checked in memory, only templates are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from hardware.camera import FrameSource
from hardware.errors import CameraError, EndOfReplay, UnreadableFrame
from terminal.face.errors import EnrolmentRefused, NoConsent
from terminal.face.images import load_rgb
from terminal.face.pipeline import ENROL_QUALITY, FacePipeline, QualityPolicy
from terminal.face.templates import TemplateStore
from terminal.roster import Child

#: Enrolment is offline and rare: average the descriptor over a few jittered crops.
ENROL_JITTERS = 5

_PROBLEMS = {
    "too_small": "the face is too small (come closer or use a larger photo)",
    "not_frontal": "the face is turned away (look straight at the camera)",
    "blurred": "the photo is blurred",
}


class ChildLookup(Protocol):
    """What enrolment needs from :class:`terminal.roster.Roster`."""

    def child(self, child_id: str) -> Child | None: ...


def consenting_child(roster: ChildLookup, child_id: str) -> Child:
    """The roster's child ``child_id`` if a parent consented to face use; else :class:`NoConsent`."""
    child = roster.child(child_id)
    if child is None:
        raise NoConsent(f"child {child_id} is not in the roster")
    if not child.consent_face:
        raise NoConsent(f"child {child_id} has no face consent in the roster; use the badge only")
    return child


def template_from_photo(
    pipeline: FacePipeline,
    rgb: npt.NDArray[np.uint8],
    name: str,
    policy: QualityPolicy = ENROL_QUALITY,
    jitters: int = ENROL_JITTERS,
) -> npt.NDArray[np.float32]:
    """One template from one photo, or :class:`EnrolmentRefused` saying what is wrong with it."""
    faces = pipeline.detect(rgb, policy)
    if not faces:
        raise EnrolmentRefused(f"{name}: no face found")
    if len(faces) > 1:
        raise EnrolmentRefused(f"{name}: {len(faces)} faces; the photo must show the child alone")
    face = faces[0]
    vector = pipeline.describe(rgb, face, policy, jitters)
    if vector is None:
        reason = _PROBLEMS.get(face.problem or "", face.problem or "unusable face")
        raise EnrolmentRefused(f"{name}: {reason}")
    return vector


def enrol(
    store: TemplateStore,
    roster: ChildLookup,
    pipeline: FacePipeline,
    child_id: str,
    photos: Sequence[Path],
) -> int:
    """Check consent, build a template from every photo (all must pass), then store them; returns count."""
    consenting_child(roster, child_id)
    if not photos:
        raise EnrolmentRefused("no photos given")
    vectors = [template_from_photo(pipeline, load_rgb(p), str(p)) for p in photos]
    return store.add(child_id, vectors)


#: Camera enrolment: templates taken from this many good frames, looking at no more than ``MAX_FRAMES``.
CAMERA_TEMPLATES = 3
MAX_FRAMES = 150  # about 5 s at 30 fps


def enrol_from_camera(
    store: TemplateStore,
    roster: ChildLookup,
    pipeline: FacePipeline,
    child_id: str,
    camera: FrameSource,
    *,
    count: int = CAMERA_TEMPLATES,
    max_frames: int = MAX_FRAMES,
    skip: int = 5,
) -> int:
    """Enrol from the gate's camera: ``count`` frames that pass the enrolment checks, at least ``skip``
    frames apart (different moments, not one picture thrice), else nothing is stored. Frames stay in
    memory; returns the number of templates stored."""
    consenting_child(roster, child_id)
    vectors: list[npt.NDArray[np.float32]] = []
    last_problem = "no frame from the camera"
    last_good = -skip
    for n in range(max_frames):
        try:
            frame = camera.read()
        except EndOfReplay:
            break
        except UnreadableFrame:
            continue
        except CameraError as exc:
            raise EnrolmentRefused(f"camera: {exc}") from None
        if n - last_good < skip:
            continue
        image = frame.image
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.ndim == 3 else cv2.COLOR_GRAY2RGB)
        try:
            vectors.append(template_from_photo(pipeline, np.ascontiguousarray(rgb), f"frame {n + 1}"))
        except EnrolmentRefused as exc:
            last_problem = str(exc)
            continue
        last_good = n
        if len(vectors) >= count:
            return store.add(child_id, vectors)
    raise EnrolmentRefused(
        f"only {len(vectors)} of {count} good frames in {max_frames}; last problem: {last_problem}"
    )

"""Enrolment: photos of a consenting child -> quality-checked templates in the encrypted store.

All or nothing: every photo must pass (exactly one face, big enough, sharp, frontal) before anything
is stored, so a refused photo never leaves half an enrolment behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

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

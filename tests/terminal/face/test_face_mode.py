"""Mode ``face`` (1:N): only consenting children are candidates, and a failed liveness check never accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from terminal.face.check import FaceCheck, FaceMethod, identify_child
from terminal.face.enrol import template_from_photo
from terminal.face.images import load_rgb
from terminal.face.liveness import LIVENESS_MIN, nonrigid_motion
from terminal.face.pipeline import FacePipeline
from terminal.face.templates import TemplateStore, open_templates
from tests.conftest import shared_path

POINTS = np.array([[60.0, 50], [45, 50], [100, 50], [115, 50], [80, 90]])


def test_rigid_motion_scores_zero_and_shape_change_does_not() -> None:
    angle = np.radians(10)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (POINTS @ rot.T) * 1.3 + [25, -7]  # a photo slid, turned and brought closer
    assert nonrigid_motion([POINTS, moved]) < 1e-9
    blink = POINTS.copy()
    blink[4] += [0, 6]  # the nose tip moves relative to the eyes (head nods in depth)
    assert nonrigid_motion([POINTS, moved, blink]) > LIVENESS_MIN
    assert nonrigid_motion([POINTS]) == 0.0


@pytest.fixture
def store(tmp_path: Path, pipeline: FacePipeline) -> Iterator[TemplateStore]:
    faces = shared_path("data", "faces", "face_recognition")
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as s:
        obama = template_from_photo(pipeline, load_rgb(faces / "train__obama__obama.jpg"), "o", jitters=1)
        biden = template_from_photo(pipeline, load_rgb(faces / "train__biden__biden2.jpg"), "b", jitters=1)
        s.add("ann", [obama])
        s.add("bob", [biden])
        s.add("cid", [obama])  # cid's consent was withdrawn; the roster no longer lists it as consenting
        yield s


@pytest.mark.slow
def test_one_to_n_among_consenting_with_liveness(pipeline: FacePipeline, store: TemplateStore) -> None:
    faces = shared_path("data", "faces", "face_recognition")
    still = load_rgb(faces / "obama3.jpg")
    other = load_rgb(faces / "train__obama__obama2.jpg")
    check = FaceCheck(pipeline, store)

    for _ in range(3):  # the same picture held still: matches, but is not accepted
        check.observe(still, bgr=False)
    held_up = identify_child(check, ["ann", "bob"])
    assert held_up.child_id is None and held_up.reason == "liveness"
    assert held_up.evidence["liveness"] < LIVENESS_MIN * 1000

    check.observe(still, bgr=False)
    check.observe(other, bgr=False)  # the face changes shape between frames
    live = identify_child(check, ["ann", "bob"])
    assert live.child_id == "ann" and live.evidence["face_method"] == FaceMethod.FACE_MATCH
    assert live.evidence["liveness"] >= LIVENESS_MIN * 1000

    # cid has the same templates as ann, but no consent: never a candidate. Without ann, nobody matches.
    check.observe(still, bgr=False)
    check.observe(other, bgr=False)
    withdrawn = identify_child(check, ["bob"])
    assert withdrawn.child_id is None and withdrawn.reason == "no_match"
    check.observe(still, bgr=False)
    check.observe(other, bgr=False)
    both = identify_child(check, ["ann", "bob"])
    assert both.child_id == "ann"  # with cid excluded there is no ambiguity between ann and cid

    assert identify_child(check, ["ann"]).reason == "no_face"  # nothing seen since the last check-in


def test_frames_leave_memory_after_the_window(pipeline: FacePipeline, store: TemplateStore) -> None:
    faces = shared_path("data", "faces", "face_recognition")
    now = [0.0]
    check = FaceCheck(pipeline, store, window=3.0, monotonic=lambda: now[0])
    check.observe(load_rgb(faces / "obama3.jpg"), bgr=False)
    assert len(check.recent()) == 1
    now[0] = 3.5
    check.observe(np.zeros((240, 320, 3), np.uint8), bgr=False)  # an empty frame: nobody at the gate
    assert check.recent() == [] and len(check._seen) == 0

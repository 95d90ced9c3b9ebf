"""``face_mismatch`` on what the real face pipeline writes: the gate's FaceCheck (dlib, shared portraits)
decides, the gate appends, the register ingests, the audit reads ``face_method`` / ``face_dist`` /
``face_margin`` / ``liveness`` in the gate's own units (thousandths)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.entry import decode_entry
from register.tabel.audit import Params
from terminal.decide import Decision, Reason
from terminal.face.check import FaceCheck, FaceMethod, identify_child
from terminal.face.checkin import FaceResult
from terminal.face.enrol import template_from_photo
from terminal.face.images import load_rgb
from terminal.face.liveness import LIVENESS_MIN
from terminal.face.match import MARGIN, THRESHOLD, THRESHOLD_1N
from terminal.face.pipeline import FacePipeline
from terminal.face.templates import open_templates
from terminal.gate import OutcomeKind
from tests.conftest import shared_path
from tests.register.tabel_terminal import Terminal, Town, at, open_town, process_zone, roster_csv, row

__all__ = ["process_zone"]
pytestmark = pytest.mark.usefixtures("process_zone")

CHILDREN = [f"c-{i:03d}" for i in range(1, 5)]


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline()


@pytest.fixture(scope="module")
def photos() -> dict[str, Path]:
    faces = shared_path("data", "faces", "face_recognition")
    return {
        "ann_enrol": faces / "train__obama__obama.jpg",
        "ann_gate": faces / "obama3.jpg",
        "bob_enrol": faces / "train__biden__biden2.jpg",
    }


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Town]:
    t = open_town(tmp_path)
    t.publish("K1", roster_csv(CHILDREN, consent=("c-001", "c-002")))
    yield t
    t.close()


class LaxFaceCheck(FaceCheck):
    """A tampered gate: the real face check runs and writes its evidence, its refusal is dropped."""

    def verify(self, decision: Decision) -> Decision:
        checked = super().verify(decision)
        if checked.reason in (Reason.FACE_MISMATCH, Reason.NO_FACE):
            return replace(checked, accepted=True, reason=None, log_rejected=False)
        return checked


def face_gate(
    town: Town,
    tmp: Path,
    pipeline: FacePipeline,
    photos: dict[str, Path],
    *,
    check: type[FaceCheck],
    threshold: float = THRESHOLD,
) -> tuple[Terminal, FaceCheck]:
    """K1's gate in mode qr+face with c-001 (Ann) and c-002 (Bob) enrolled from the shared portraits."""
    store = open_templates(tmp / "faces.db", tmp / "face.key")
    store.add("c-001", [template_from_photo(pipeline, load_rgb(photos["ann_enrol"]), "ann", jitters=1)])
    store.add("c-002", [template_from_photo(pipeline, load_rgb(photos["bob_enrol"]), "bob", jitters=1)])
    face = check(pipeline, store, threshold=threshold, monotonic=lambda: 0.0)
    return town.terminal("north", kindergarten="K1", face_check=face), face


def test_the_audit_thresholds_are_the_gates_own() -> None:
    p = Params()
    assert p.face_distance_max == round(THRESHOLD * 1000)
    assert p.face_distance_max_1n == round(THRESHOLD_1N * 1000)
    assert p.face_margin_min == round(MARGIN * 1000)
    assert p.liveness_min == round(LIVENESS_MIN * 1000)


def test_a_tampered_gate_accepting_its_own_face_mismatch_is_flagged_and_not_payable(
    town: Town, tmp_path: Path, pipeline: FacePipeline, photos: dict[str, Path]
) -> None:
    gate, check = face_gate(town, tmp_path, pipeline, photos, check=LaxFaceCheck)
    ann, badges = load_rgb(photos["ann_gate"]), town.serials("K1")
    monday, tuesday = dt.date(2025, 3, 3), dt.date(2025, 3, 4)
    check.observe(ann, bgr=False)  # Ann's own badge and face: a real match
    honest = gate.accepted(badges["c-001"], at(3, "08:00"))
    check.observe(ann, bgr=False)  # Ann's face with Bob's badge: the check says mismatch, the gate accepts
    shared = gate.accepted(badges["c-002"], at(3, "08:05"))
    no_face = gate.accepted(badges["c-001"], at(4, "08:00"))  # nobody in front of the camera
    gate.deliver(at(4, "20:00"))

    entries = {i: decode_entry(gate.ledger.entries(i, i + 1)[0]) for i in (honest, shared, no_face)}
    assert entries[honest].evidence["face_method"] == FaceMethod.FACE_MATCH
    assert (
        entries[shared].kind == "in" and entries[shared].evidence["face_method"] == FaceMethod.FACE_MISMATCH
    )
    assert entries[shared].evidence["face_dist"] >= THRESHOLD * 1000  # type: ignore[operator]
    assert entries[no_face].evidence["face_method"] == FaceMethod.NO_USABLE_FACE

    flags = {f.entries[0]: f for f in town.flags("K1", "face_mismatch")}
    assert sorted(flags) == [shared, no_face]
    ev = flags[shared].evidence
    assert ev["problems"] == ["face_method_mismatch", "face_dist_over_max"]
    assert ev["face_method"] == 4 and ev["face_dist"] == entries[shared].evidence["face_dist"]
    assert ev["face_set"] == entries[shared].evidence["face_set"] and ev["badge"] == badges["c-002"]
    assert flags[no_face].evidence["problems"] == ["face_method_no_usable_face"]
    t = town.tabel("K1")
    assert (row(t, "c-002", monday).status, row(t, "c-002", monday).payable) == ("present", 0)
    assert "face_mismatch" in row(t, "c-002", monday).flags.split(";")
    assert row(t, "c-001", tuesday).payable == 0
    assert (row(t, "c-001", monday).payable, row(t, "c-001", monday).flags) == (1, "no_checkout")


def test_a_match_accepted_above_the_gates_threshold_is_flagged_by_its_distance(
    town: Town, tmp_path: Path, pipeline: FacePipeline, photos: dict[str, Path]
) -> None:
    """A gate configured with a lax threshold: the pipeline calls Ann's face with Bob's badge a match
    (``face_method`` 3); only the distance in thousandths tells the audit."""
    gate, check = face_gate(town, tmp_path, pipeline, photos, check=FaceCheck, threshold=0.99)
    ann, badges = load_rgb(photos["ann_gate"]), town.serials("K1")
    check.observe(ann, bgr=False)
    honest = gate.accepted(badges["c-001"], at(3, "08:00"))
    check.observe(ann, bgr=False)
    lax = gate.accepted(badges["c-002"], at(3, "08:05"))
    gate.deliver(at(3, "20:00"))
    entry = decode_entry(gate.ledger.entries(lax, lax + 1)[0])
    assert entry.evidence["face_method"] == FaceMethod.FACE_MATCH
    honest_dist = decode_entry(gate.ledger.entries(honest, honest + 1)[0]).evidence["face_dist"]
    assert isinstance(honest_dist, int) and 0 < honest_dist < Params().face_distance_max
    (flag,) = town.flags("K1", "face_mismatch")
    assert flag.entries == [lax] and flag.evidence["problems"] == ["face_dist_over_max"]
    far = entry.evidence["face_dist"]
    assert isinstance(far, int) and flag.evidence["face_dist"] == far > Params().face_distance_max
    assert row(town.tabel("K1"), "c-002", dt.date(2025, 3, 3)).payable == 0
    assert row(town.tabel("K1"), "c-001", dt.date(2025, 3, 3)).payable == 1


def test_mode_face_accepted_without_liveness_is_flagged(
    town: Town, tmp_path: Path, pipeline: FacePipeline, photos: dict[str, Path]
) -> None:
    """Mode face (1:N) with the liveness check switched off: a still photo of Ann is recognised; the
    entry's own ``liveness`` says the face never moved."""
    gate, check = face_gate(town, tmp_path, pipeline, photos, check=FaceCheck)
    ann = load_rgb(photos["ann_gate"])
    gate.at(at(3, "08:00"))
    for _ in range(3):
        check.observe(ann, bgr=False)
    identity = identify_child(check, ["c-001", "c-002"], liveness_min=0.0)
    child = gate.roster.child("c-001")
    assert identity.child_id == "c-001" and child is not None
    outcome = gate.gate.handle_face(FaceResult(identity, child))
    assert outcome.kind is OutcomeKind.ACCEPTED and outcome.index is not None
    gate.deliver(at(3, "20:00"))
    (flag,) = town.flags("K1", "face_mismatch")
    assert flag.entries == [outcome.index] and flag.evidence["method"] == "face"
    assert flag.evidence["problems"] == ["liveness_under_min"]
    assert flag.evidence["liveness"] < Params().liveness_min


class SilentFaceCheck(FaceCheck):
    """A tampered gate: the face check runs, but the entry claims a match and drops the distance."""

    def verify(self, decision: Decision) -> Decision:
        checked = super().verify(decision)
        kept = {k: v for k, v in checked.evidence.items() if k not in ("face_dist", "face_margin")}
        return replace(
            checked, accepted=True, reason=None, log_rejected=False, evidence={**kept, "face_method": 3}
        )


def test_a_face_check_in_without_its_distance_is_flagged(
    town: Town, tmp_path: Path, pipeline: FacePipeline, photos: dict[str, Path]
) -> None:
    gate, check = face_gate(town, tmp_path, pipeline, photos, check=SilentFaceCheck)
    check.observe(load_rgb(photos["ann_gate"]), bgr=False)
    index = gate.accepted(town.serials("K1")["c-002"], at(3, "08:05"))
    gate.deliver(at(3, "20:00"))
    (flag,) = town.flags("K1", "face_mismatch")
    assert flag.entries == [index] and flag.evidence["problems"] == ["face_evidence_missing"]
    assert flag.evidence["face_method"] == 3 and flag.evidence["face_dist"] is None

"""Mode qr+face at the real gate: the badge's child must show their face; badge sharing is refused and
recorded; a child without consent is accepted on the badge alone and never face-matched."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hardware.feedback import NullFeedback
from ledger.clock import FakeClock
from ledger.entry import decode_entry
from ledger.store import Ledger, open_ledger
from terminal.badge import encode_badge, new_serial
from terminal.decide import DecideConfig, Decider
from terminal.face.check import FaceCheck, FaceMethod
from terminal.face.enrol import template_from_photo
from terminal.face.images import load_rgb
from terminal.face.match import THRESHOLD
from terminal.face.pipeline import FacePipeline
from terminal.face.templates import TemplateStore, open_templates
from terminal.gate import Gate, OutcomeKind
from terminal.roster import Child, Roster, RosterData, open_roster
from terminal.screen.state import CardKind
from tests.conftest import shared_path

TZ = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 2, 8, 0, tzinfo=TZ)
ANN, BOB, CID = new_serial(), new_serial(), new_serial()


@pytest.fixture
def photos() -> dict[str, Path]:
    faces = shared_path("data", "faces", "face_recognition")
    return {
        "ann_enrol": faces / "train__obama__obama.jpg",
        "ann_gate": faces / "obama3.jpg",
        "bob_enrol": faces / "train__biden__biden2.jpg",
    }


@pytest.fixture
def roster(tmp_path: Path) -> Iterator[Roster]:
    children = (
        Child("ann", "Ann", "Sun", True),
        Child("bob", "Bob", "Sun", True),
        Child("cid", "Cid", "Sun", False),
    )
    badges = ((ANN, "ann", False), (BOB, "bob", False), (CID, "cid", False))
    with open_roster(tmp_path / "roster.db") as r:
        r.install(RosterData(1, children, badges, "x"))
        yield r


@pytest.fixture
def store(tmp_path: Path, pipeline: FacePipeline, photos: dict[str, Path]) -> Iterator[TemplateStore]:
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as s:
        s.add("ann", [template_from_photo(pipeline, load_rgb(photos["ann_enrol"]), "ann", jitters=1)])
        s.add("bob", [template_from_photo(pipeline, load_rgb(photos["bob_enrol"]), "bob", jitters=1)])
        # Templates left over from before Cid's consent was withdrawn (retention not yet run): unused.
        s.add("cid", [template_from_photo(pipeline, load_rgb(photos["ann_enrol"]), "cid", jitters=1)])
        yield s


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    clock = FakeClock(int(MORNING.timestamp() * 1000))
    with open_ledger(tmp_path / "ledger.db", origin="reg.example/kgate/gate1", clock=clock) as led:
        yield led


@pytest.mark.slow
def test_qr_face_mode(
    pipeline: FacePipeline, store: TemplateStore, roster: Roster, ledger: Ledger, photos: dict[str, Path]
) -> None:
    clock = FakeClock(int(MORNING.timestamp() * 1000))
    check = FaceCheck(pipeline, store)
    gate = Gate(
        ledger, Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock), NullFeedback(), face_check=check
    )
    ann_face = load_rgb(photos["ann_gate"])

    # Ann's own badge and Ann's face: accepted, with face evidence.
    check.observe(ann_face, bgr=False)
    assert gate.handle_code(encode_badge(ANN).encode()).kind is OutcomeKind.ACCEPTED
    entry = decode_entry(ledger.entries(0, 1)[0])
    assert (entry.kind, entry.child, entry.method) == ("in", "ann", "qr+face")
    assert entry.evidence["face_method"] == FaceMethod.FACE_MATCH
    dist = entry.evidence["face_dist"]
    assert isinstance(dist, int) and 0 < dist < THRESHOLD * 1000
    assert entry.evidence["face_set"] == store.version()
    assert isinstance(entry.evidence["liveness"], int)

    # Ann's face with Bob's badge: badge sharing, refused on screen and recorded.
    check.observe(ann_face, bgr=False)
    outcome = gate.handle_code(encode_badge(BOB).encode())
    assert outcome.kind is OutcomeKind.REFUSED
    assert gate.card is not None and gate.card.kind is CardKind.REFUSED
    assert gate.card.message_key == "refused.face_mismatch" and gate.card.name is None
    rejected = decode_entry(ledger.entries(1, 2)[0])
    assert (rejected.kind, rejected.child, rejected.reason) == ("rejected", "bob", "face_mismatch")
    assert rejected.evidence["face_method"] == FaceMethod.FACE_MISMATCH
    far = rejected.evidence["face_dist"]
    assert isinstance(far, int) and far >= THRESHOLD * 1000

    # Cid has no face consent: accepted on the badge alone, never face-matched, and the entry says so.
    check.observe(ann_face, bgr=False)
    assert gate.handle_code(encode_badge(CID).encode()).kind is OutcomeKind.ACCEPTED
    cid = decode_entry(ledger.entries(2, 3)[0])
    assert (cid.child, cid.method) == ("cid", "qr")
    assert cid.evidence == {"badge": CID, "face_method": FaceMethod.BADGE_NO_CONSENT}


@pytest.mark.slow
def test_no_face_seen_is_refused(
    pipeline: FacePipeline, store: TemplateStore, roster: Roster, ledger: Ledger
) -> None:
    clock = FakeClock(int(MORNING.timestamp() * 1000))
    gate = Gate(
        ledger,
        Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock),
        NullFeedback(),
        face_check=FaceCheck(pipeline, store),
    )
    assert gate.handle_code(encode_badge(ANN).encode()).kind is OutcomeKind.REFUSED
    entry = decode_entry(ledger.entries(0, 1)[0])
    assert entry.kind == "rejected" and entry.evidence["face_method"] == FaceMethod.NO_USABLE_FACE
    assert entry.reason == "no_face"
    assert gate.card is not None and gate.card.message_key == "refused.no_face"


@pytest.mark.slow
def test_face_mismatch_refusals_are_rate_limited(
    pipeline: FacePipeline, store: TemplateStore, roster: Roster, ledger: Ledger, photos: dict[str, Path]
) -> None:
    """Badge sharing tried again and again: refused every time, one rejected entry per log window."""
    clock = FakeClock(int(MORNING.timestamp() * 1000))
    now = [0.0]
    check = FaceCheck(pipeline, store, monotonic=lambda: now[0])
    config = DecideConfig(timezone="Asia/Almaty", rejected_log_seconds=60)
    gate = Gate(
        ledger, Decider(roster, config, clock), NullFeedback(), face_check=check, monotonic=lambda: now[0]
    )
    ann_face = load_rgb(photos["ann_gate"])
    for _ in range(3):  # Ann's face with Bob's badge, every 10 s (past the gate's quiet period)
        check.observe(ann_face, bgr=False)
        assert gate.handle_code(encode_badge(BOB).encode()).kind is OutcomeKind.REFUSED
        now[0] += 10
        clock.advance(10)
    reasons = [decode_entry(e).reason for e in ledger.entries(0, ledger.size)]
    assert reasons == ["face_mismatch"]
    clock.advance(60)  # a new log window: recorded again
    now[0] += 60
    check.observe(ann_face, bgr=False)
    gate.handle_code(encode_badge(BOB).encode())
    assert [decode_entry(e).reason for e in ledger.entries(0, ledger.size)] == ["face_mismatch"] * 2

"""Mode ``face`` at the real gate: frames replayed from photos, real templates, a real ledger.

A consenting enrolled child is checked in by face; a stranger is not; two children too close to call
are refused; a still photo (identical frames) never checks anyone in; a child without consent is never
a candidate, and badges keep working for everyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest

from hardware.feedback import NullFeedback
from ledger.clock import FakeClock
from ledger.entry import Entry, decode_entry
from ledger.store import Ledger, open_ledger
from terminal.badge import encode_badge, new_serial
from terminal.decide import DecideConfig, Decider
from terminal.face.check import FaceCheck, FaceMethod
from terminal.face.checkin import FaceCheckin
from terminal.face.enrol import template_from_photo
from terminal.face.images import load_rgb
from terminal.face.match import THRESHOLD_1N
from terminal.face.pipeline import FacePipeline
from terminal.face.templates import TemplateStore, open_templates
from terminal.gate import Gate, Outcome, OutcomeKind
from terminal.roster import Child, Roster, RosterData, open_roster
from terminal.screen.state import CardKind
from tests.conftest import shared_path

TZ = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 2, 8, 0, tzinfo=TZ)
CID_BADGE = new_serial()
FACES = shared_path("data", "faces", "face_recognition")
Image = npt.NDArray[np.uint8]


def photo(name: str) -> Image:
    return load_rgb(FACES / name)


@pytest.fixture
def roster(tmp_path: Path) -> Iterator[Roster]:
    children = (
        Child("ann", "Ann", "Sun", True),
        Child("bob", "Bob", "Sun", True),
        Child("cid", "Cid", "Sun", False),  # no face consent: badge only
        Child("dan", "Dan", "Sun", True),
    )
    with open_roster(tmp_path / "roster.db") as r:
        r.install(RosterData(1, children, ((CID_BADGE, "cid", False),), "x"))
        yield r


@pytest.fixture
def store(tmp_path: Path, pipeline: FacePipeline) -> Iterator[TemplateStore]:
    with open_templates(tmp_path / "faces.db", tmp_path / "face.key") as s:
        s.add("ann", [template_from_photo(pipeline, photo("train__obama__obama.jpg"), "ann", jitters=1)])
        s.add("bob", [template_from_photo(pipeline, photo("train__biden__biden2.jpg"), "bob", jitters=1)])
        # Left over from before Cid's consent was withdrawn (retention not yet run): must never match.
        s.add(
            "cid", [template_from_photo(pipeline, photo("train__alex_lacamoire__img1.jpg"), "cid", jitters=1)]
        )
        yield s


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    clock = FakeClock(int(MORNING.timestamp() * 1000))
    with open_ledger(tmp_path / "ledger.db", origin="reg.example/kgate/gate1", clock=clock) as led:
        yield led


class FaceGate:
    """The gate and the face check-in as the terminal's frame loop wires them, on a fake clock."""

    def __init__(self, pipeline: FacePipeline, store: TemplateStore, roster: Roster, ledger: Ledger) -> None:
        self.now = [0.0]
        self.clock = FakeClock(int(MORNING.timestamp() * 1000))
        decider = Decider(roster, DecideConfig(timezone="Asia/Almaty", rejected_log_seconds=60), self.clock)
        self.gate = Gate(ledger, decider, NullFeedback(), monotonic=lambda: self.now[0])
        check = FaceCheck(pipeline, store, monotonic=lambda: self.now[0])
        self.checkin = FaceCheckin(check, roster.children, cooldown=3.0, monotonic=lambda: self.now[0])
        self.ledger = ledger

    def show(self, *frames: Image) -> list[Outcome]:
        """Replay frames at 10 fps; the outcomes of the identifications they triggered."""
        outcomes = []
        for image in frames:
            self.now[0] += 0.1
            result = self.checkin.observe(image, bgr=False)
            if result is not None:
                outcomes.append(self.gate.handle_face(result))
        return outcomes

    def later(self, seconds: float) -> None:
        self.now[0] += seconds
        self.clock.advance(seconds)

    def entries(self) -> list[Entry]:
        return [decode_entry(e) for e in self.ledger.entries(0, self.ledger.size)]


@pytest.fixture
def face_gate(pipeline: FacePipeline, store: TemplateStore, roster: Roster, ledger: Ledger) -> FaceGate:
    return FaceGate(pipeline, store, roster, ledger)


LIVE_ANN = ("obama3.jpg", "train__obama__obama2.jpg", "obama3.jpg")  # the face changes shape between frames


@pytest.mark.slow
def test_consenting_child_is_checked_in_by_face(face_gate: FaceGate, store: TemplateStore) -> None:
    assert face_gate.show(photo(LIVE_ANN[0]), photo(LIVE_ANN[1])) == []  # not enough frames yet
    [outcome] = face_gate.show(photo(LIVE_ANN[2]))
    assert outcome.kind is OutcomeKind.ACCEPTED
    [entry] = face_gate.entries()
    assert (entry.kind, entry.child, entry.method) == ("in", "ann", "face")
    ev = entry.evidence
    assert ev["face_method"] == FaceMethod.FACE_MATCH and ev["face_set"] == store.version()
    assert isinstance(ev["face_dist"], int) and 0 < ev["face_dist"] < THRESHOLD_1N * 1000
    assert isinstance(ev["face_margin"], int) and ev["face_margin"] > 0
    assert isinstance(ev["liveness"], int) and ev["liveness"] >= 30
    assert "badge" not in ev
    card = face_gate.gate.card
    assert card is not None and card.kind is CardKind.ACCEPTED and card.name == "Ann"

    # Still standing at the gate: nothing during the cool-down, then a debounce repeat, not an "out".
    assert face_gate.show(*(photo(n) for n in LIVE_ANN * 3)) == []
    face_gate.later(3.0)
    [again] = face_gate.show(*(photo(n) for n in LIVE_ANN))
    assert again.kind is OutcomeKind.REPEAT and len(face_gate.entries()) == 1


@pytest.mark.slow
def test_stranger_is_not_checked_in(face_gate: FaceGate) -> None:
    # Alex is enrolled only as Cid, who has no face consent: a stranger to mode face.
    outcomes = face_gate.show(
        photo("alex-lacamoire.png"), photo("test__alex_lacamoire1.jpg"), photo("alex-lacamoire.png")
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.PENDING]
    assert face_gate.entries() == []  # shown only: strangers pass the camera all day
    card = face_gate.gate.card
    assert card is not None and card.kind is CardKind.REFUSED and card.name is None
    assert card.message_key == "refused.face_unknown"


@pytest.mark.slow
def test_still_photo_never_checks_in_and_is_recorded_rate_limited(face_gate: FaceGate) -> None:
    still = photo("obama3.jpg")
    [outcome] = face_gate.show(still, still, still)  # Ann's face, but it moves like a picture
    assert outcome.kind is OutcomeKind.REFUSED
    [entry] = face_gate.entries()
    assert (entry.kind, entry.child, entry.reason, entry.method) == (
        "rejected",
        None,
        "face_liveness",
        "face",
    )
    assert entry.evidence["liveness"] == 0 and entry.evidence["face_method"] == FaceMethod.FACE_MISMATCH
    assert face_gate.gate.card is not None and face_gate.gate.card.message_key == "refused.face_liveness"

    face_gate.later(10.0)  # again within rejected_log_seconds: refused, but no second entry
    assert [o.kind for o in face_gate.show(still, still, still)] == [OutcomeKind.REFUSED]
    assert len(face_gate.entries()) == 1
    face_gate.later(61.0)
    face_gate.show(still, still, still)
    assert [e.reason for e in face_gate.entries()] == ["face_liveness", "face_liveness"]


@pytest.mark.slow
def test_two_close_candidates_are_refused(
    face_gate: FaceGate, store: TemplateStore, pipeline: FacePipeline
) -> None:
    # Dan's template comes from another photo of the same face: Ann and Dan are too close to call.
    store.add("dan", [template_from_photo(pipeline, photo("train__obama__obama.jpg"), "dan", jitters=1)])
    [outcome] = face_gate.show(*(photo(n) for n in LIVE_ANN))
    assert outcome.kind is OutcomeKind.PENDING and outcome.decision is not None
    assert outcome.decision.reason == "face_unknown"
    margin = outcome.decision.evidence["face_margin"]
    assert isinstance(margin, int) and margin < 50  # under the 0.05 margin
    assert face_gate.entries() == []


@pytest.mark.slow
def test_child_without_consent_uses_the_badge(face_gate: FaceGate) -> None:
    outcome = face_gate.gate.handle_code(encode_badge(CID_BADGE).encode())
    assert outcome.kind is OutcomeKind.ACCEPTED
    [entry] = face_gate.entries()
    assert (entry.kind, entry.child, entry.method) == ("in", "cid", "qr")
    assert entry.evidence == {"badge": CID_BADGE}

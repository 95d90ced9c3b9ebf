"""Authorized pickup: guardian + child badge at check-out, on a real roster file, ledger and GPIO pins.

Set ``KGATE_SCREENS_DIR=DIR`` to keep the refusal-card and staff-list screenshots.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image

from hardware.feedback import FeedbackConfig, GpioFeedback
from ledger.clock import FakeClock
from ledger.entry import Entry, decode_entry
from ledger.store import Ledger, open_ledger
from terminal.badge import encode_badge, new_serial
from terminal.config import ConfigError, parse_config
from terminal.decide import DecideConfig, Decider, Direction
from terminal.gate import Gate, OutcomeKind
from terminal.i18n import CATALOGUES, LANGUAGES, t
from terminal.pickup import Pickup, PickupPolicy
from terminal.roster import Roster, load_roster
from terminal.screen import CardKind, GateScreen, ResultCard, ScreenConfig, ScreenState, StatusInfo, theme
from terminal.screen.samples import STATUS, synthetic_frame
from terminal.screen.text import fit
from terminal.today import today_from_ledger
from tests.conftest import READY_S, wait_until

TZ = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 2, 8, 0, tzinfo=TZ)
EVENING_HOURS = 9 * 3600  # 17:00
FAST = FeedbackConfig(accept_seconds=0.05, refuse_seconds=0.05, beep_seconds=0.01)
GREEN, RED = 17, 27
ARUZHAN, IVAN = new_serial(), new_serial()
DANA, BORIS, OLD = new_serial(), new_serial(), new_serial()  # Aruzhan's, Ivan's, a revoked badge
ROSTER = {
    "version": 4,
    "kindergarten": "k-7",
    "children": [
        {"id": "c-1", "name": "Аружан Сәрсенбай", "group": "Күншуақ"},
        {"id": "c-2", "name": "Иван", "group": "Күншуақ"},
    ],
    "guardians": [
        {"id": "g-dana", "name": "Дана", "children": ["c-1"]},
        {"id": "g-boris", "name": "Борис", "children": ["c-2"]},
        {"id": "g-old", "name": "Ержан", "children": ["c-1"]},
    ],
    "badges": [
        {"serial": ARUZHAN, "child": "c-1"},
        {"serial": IVAN, "child": "c-2"},
        {"serial": DANA, "guardian": "g-dana"},
        {"serial": BORIS, "guardian": "g-boris"},
        {"serial": OLD, "guardian": "g-old", "revoked": True},
    ],
}


class Tick:
    """A settable monotonic clock for the gate's quiet period."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(int(MORNING.timestamp() * 1000))


@pytest.fixture
def roster(tmp_path: Path) -> Iterator[Roster]:
    (tmp_path / "roster.json").write_text(json.dumps(ROSTER, ensure_ascii=False), encoding="utf-8")
    with load_roster(tmp_path / "roster.db", tmp_path / "roster.json") as r:
        yield r


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Iterator[Ledger]:
    with open_ledger(tmp_path / "ledger.db", origin="reg.example/kgate/gate1", clock=clock) as led:
        yield led


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def make_gate(
    ledger: Ledger, roster: Roster, clock: FakeClock, factory: MockFactory
) -> Iterator[Callable[[str], Gate]]:
    """A gate with pickup policy ``mode``; the children already checked in this morning."""
    feedbacks: list[GpioFeedback] = []

    def make(mode: str) -> Gate:
        feedback = GpioFeedback(FAST, pin_factory=factory)
        feedbacks.append(feedback)
        decider = Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock)
        pickup = Pickup(roster, PickupPolicy(mode, window_seconds=30))
        gate = Gate(ledger, decider, feedback, lang="en", monotonic=Tick(), pickup=pickup)
        for child in (ARUZHAN, IVAN):
            assert gate.handle([badge(child)]).kind is OutcomeKind.ACCEPTED
        clock.advance(EVENING_HOURS)
        # let the morning's blink end
        wait_until(lambda: not any(factory.pin(n).state for n in (GREEN, RED)), "the morning's blink ending")
        for number in (GREEN, RED):
            factory.pin(number).clear_states()
        return gate

    yield make
    for feedback in feedbacks:
        feedback.close()


def badge(serial: str) -> bytes:
    return encode_badge(serial).encode()


def entries(ledger: Ledger) -> list[Entry]:
    return [decode_entry(data) for data in ledger.entries(0, ledger.size)]


def evening(ledger: Ledger) -> list[Entry]:
    """The entries after the two morning check-ins."""
    return entries(ledger)[2:]


def lit(factory: MockFactory, number: int, wait: float = READY_S) -> bool:
    """Whether the pin went high within ``wait`` seconds (feedback runs in gpiozero's threads).

    Returns as soon as it did: the long default costs nothing when it lights; the checks that it
    stays dark pass a short quiet window."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if any(bool(s.state) for s in factory.pin(number).states):
            return True
        time.sleep(0.005)
    return False


def still_in(ledger: Ledger, child: str = "c-1") -> bool:
    today = today_from_ledger(ledger, MORNING.date(), TZ)
    return today.children[child].direction is Direction.IN


ORDERS = {
    "guardian then child": [[DANA], [ARUZHAN]],
    "child then guardian": [[ARUZHAN], [DANA]],
    "one frame, guardian first": [[DANA, ARUZHAN]],
    "one frame, child first": [[ARUZHAN, DANA]],
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_authorized_pickup_in_either_order(
    make_gate: Callable[[str], Gate], ledger: Ledger, clock: FakeClock, factory: MockFactory, order: str
) -> None:
    gate = make_gate("guardian")
    frames = ORDERS[order]
    outcomes = []
    for n, frame in enumerate(frames):
        if n:
            clock.advance(5)
        outcomes.append(gate.handle([badge(s) for s in frame]))
    assert outcomes[-1].kind is OutcomeKind.ACCEPTED
    if len(frames) > 1:
        assert outcomes[0].kind is OutcomeKind.PENDING  # one badge: a prompt, never an entry
    (out,) = evening(ledger)
    assert (out.kind, out.child, out.method) == ("out", "c-1", "qr")
    assert out.evidence == {"badge": ARUZHAN, "guardian": "g-dana", "guardian_badge": DANA}
    assert out.roster_version == 4
    assert lit(factory, GREEN) and not lit(factory, RED, 0.2)
    assert (
        gate.card is not None and gate.card.kind is CardKind.ACCEPTED and gate.card.name == "Аружан Сәрсенбай"
    )
    assert not still_in(ledger)


def test_a_guardian_who_took_their_child_does_not_pick_up_the_next_familys(
    make_gate: Callable[[str], Gate], ledger: Ledger, clock: FakeClock
) -> None:
    """A busy gate: Dana leaves with Aruzhan; seconds later Boris's family shows Ivan's badge first.

    Ivan waits for his own guardian (no false "not authorized" alarm naming Dana), and never leaves
    with Dana: only Boris's badge lets him out.
    """
    gate = make_gate("guardian")
    gate.handle([badge(DANA)])
    assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.ACCEPTED
    clock.advance(3)
    waiting = gate.handle([badge(IVAN)])
    assert waiting.kind is OutcomeKind.PENDING and waiting.decision is not None
    assert str(waiting.decision.reason) == "pickup_needs_guardian"
    clock.advance(3)
    assert gate.handle([badge(BORIS)]).kind is OutcomeKind.ACCEPTED
    assert [(e.kind, e.child, e.evidence.get("guardian")) for e in evening(ledger)] == [
        ("out", "c-1", "g-dana"),
        ("out", "c-2", "g-boris"),
    ]


def test_unauthorized_guardian_is_refused_logged_and_flagged(
    make_gate: Callable[[str], Gate], ledger: Ledger, roster: Roster, clock: FakeClock, factory: MockFactory
) -> None:
    gate = make_gate("guardian")
    assert gate.handle([badge(BORIS)]).kind is OutcomeKind.PENDING
    clock.advance(4)
    outcome = gate.handle([badge(ARUZHAN)])
    assert outcome.kind is OutcomeKind.REFUSED and outcome.index is not None
    (rejected,) = evening(ledger)
    assert (rejected.kind, rejected.child, rejected.reason) == ("rejected", "c-1", "pickup_unauthorized")
    assert rejected.evidence == {"badge": ARUZHAN, "guardian": "g-boris", "guardian_badge": BORIS}
    assert lit(factory, RED) and not lit(factory, GREEN, 0.2)
    card = gate.card
    assert card is not None and card.kind is CardKind.REFUSED
    assert (card.message_key, card.name) == ("pickup.unauthorized", "Аружан Сәрсенбай")
    assert still_in(ledger)
    # the staff list, rebuilt from the ledger as after a restart, flags Aruzhan and nobody else
    today = today_from_ledger(ledger, MORNING.date(), TZ)
    kids = {c.name: c for g in today.today_list(roster.children()).groups for c in g.children}
    assert kids["Аружан Сәрсенбай"].alert == "today.pickup_alert"
    assert kids["Аружан Сәрсенбай"].time_out is None and kids["Иван"].alert is None
    # the same pair held in front of the camera: one entry per rate window, not one per frame
    for _ in range(3):
        clock.advance(4)
        gate.handle([badge(BORIS), badge(ARUZHAN)])
    assert len(evening(ledger)) == 1
    # then the right adult comes: Aruzhan leaves, with Dana as evidence
    clock.advance(60)
    gate.handle([badge(DANA)])
    assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.ACCEPTED
    assert evening(ledger)[-1].evidence["guardian"] == "g-dana"


@pytest.mark.parametrize("child_first", [False, True])
def test_revoked_guardian_badge_is_refused(
    make_gate: Callable[[str], Gate], ledger: Ledger, clock: FakeClock, child_first: bool
) -> None:
    gate = make_gate("guardian")  # g-old is listed for Aruzhan, but the badge was revoked
    first, second = (ARUZHAN, OLD) if child_first else (OLD, ARUZHAN)
    gate.handle([badge(first)])
    clock.advance(3)
    outcome = gate.handle([badge(second)])
    assert outcome.kind is OutcomeKind.REFUSED
    rejected = [e for e in evening(ledger) if e.kind == "rejected"]
    assert {e.reason for e in rejected} == {"guardian_revoked"}
    assert {e.evidence["guardian"] for e in rejected} == {"g-old"}
    paired = rejected[-1]
    assert (paired.child, paired.evidence["guardian_badge"]) == ("c-1", OLD)
    if not child_first:  # the revoked badge alone was already refused and logged, without a child
        assert rejected[0].child is None and len(rejected) == 2
    assert gate.card is not None and gate.card.message_key == "pickup.guardian_revoked"
    assert [e.kind for e in evening(ledger)] == ["rejected"] * len(rejected)
    assert still_in(ledger)
    assert today_from_ledger(ledger, MORNING.date(), TZ).alerts == {"c-1": "today.pickup_alert"}


def test_guardian_badge_alone_never_checks_anyone_in_or_out(
    make_gate: Callable[[str], Gate], ledger: Ledger, clock: FakeClock, factory: MockFactory
) -> None:
    gate = make_gate("guardian")
    for _ in range(5):
        outcome = gate.handle([badge(DANA)])
        assert outcome.kind is OutcomeKind.PENDING
        clock.advance(10)
    assert evening(ledger) == []
    assert gate.card is not None and gate.card.message_key == "pickup.show_child" and gate.card.name is None
    assert not lit(factory, GREEN, 0.2) and not lit(factory, RED, 0.2)
    assert still_in(ledger)


def test_child_alone_cannot_leave_but_checks_in_without_a_guardian(
    make_gate: Callable[[str], Gate], ledger: Ledger, clock: FakeClock
) -> None:
    gate = make_gate("guardian")
    outcome = gate.handle([badge(ARUZHAN)])
    assert outcome.kind is OutcomeKind.PENDING
    assert gate.card is not None and gate.card.message_key == "pickup.needs_guardian"
    assert gate.card.name == "Аружан Сәрсенбай"
    assert evening(ledger) == [] and still_in(ledger)
    # the morning check-ins (made by make_gate with pickup="guardian") needed no guardian
    assert [(e.kind, e.evidence) for e in entries(ledger)] == [
        ("in", {"badge": ARUZHAN}),
        ("in", {"badge": IVAN}),
    ]


@pytest.mark.parametrize("child_first", [False, True])
def test_the_window(
    make_gate: Callable[[str], Gate], ledger: Ledger, clock: FakeClock, child_first: bool
) -> None:
    gate = make_gate("guardian")
    first, second = (ARUZHAN, DANA) if child_first else (DANA, ARUZHAN)
    gate.handle([badge(first)])
    clock.advance(31)  # one second too late
    assert gate.handle([badge(second)]).kind is OutcomeKind.PENDING
    assert evening(ledger) == [] and still_in(ledger)
    clock.advance(30)  # exactly the window after the second badge: still together
    assert gate.handle([badge(first)]).kind is OutcomeKind.ACCEPTED
    assert [e.kind for e in evening(ledger)] == ["out"]


def test_pickup_off_keeps_todays_behaviour(make_gate: Callable[[str], Gate], ledger: Ledger) -> None:
    gate = make_gate("off")
    assert gate.handle([badge(DANA)]).kind is OutcomeKind.REFUSED  # an unknown badge, as before
    assert gate.handle([badge(ARUZHAN)]).kind is OutcomeKind.ACCEPTED
    kinds = [(e.kind, e.reason) for e in evening(ledger)]
    assert kinds == [("rejected", "unknown"), ("out", None)]
    assert evening(ledger)[-1].evidence == {"badge": ARUZHAN}


def test_config(tmp_path: Path) -> None:
    assert parse_config({}, state=tmp_path).gate.pickup == "off"
    gate = parse_config({"gate": {"pickup": "guardian", "pickup_window_seconds": 45}}, state=tmp_path).gate
    assert (gate.pickup, gate.pickup_window_seconds) == ("guardian", 45.0)
    with pytest.raises(ConfigError, match=r"^gate\.pickup: 'parent' is not one of off, guardian"):
        parse_config({"gate": {"pickup": "parent"}}, state=tmp_path)
    with pytest.raises(ConfigError, match=r"^gate\.pickup_window_seconds"):
        parse_config({"gate": {"pickup_window_seconds": 0}}, state=tmp_path)


# -- screenshots --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("KGATE_SCREENS_DIR")
    path = Path(keep) if keep else tmp_path_factory.mktemp("screens")
    path.mkdir(parents=True, exist_ok=True)
    return path


def colour_share(image: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> float:
    pixels = np.asarray(image.crop(box)).reshape(-1, 3).astype(int)
    return float((np.abs(pixels - np.array(colour)).sum(axis=1) < 60).mean())


def test_refusal_card_screenshots(shots: Path) -> None:
    screen = GateScreen()
    panel = screen.layout.panel
    seen = []
    for lang in LANGUAGES:
        card = ResultCard(
            CardKind.REFUSED,
            lang=lang,
            name="Аружан Сәрсенбай",
            group="Күншуақ",
            time=dt.time(17, 40),
            message_key="pickup.unauthorized",
        )
        image = screen.render(ScreenState(status=STATUS, preview=synthetic_frame(), card=card, lang=lang))
        image.save(shots / f"pickup-unauthorized-{lang}.png")
        assert colour_share(image, panel, theme.CARD_FILL[CardKind.REFUSED]) > 0.5
        ink = colour_share(image, panel, theme.CARD_TEXT[CardKind.REFUSED])
        assert 0.03 < ink < 0.5, f"{lang}: text covers {ink:.1%} of the card"
        unnamed = screen.render(
            ScreenState(
                status=STATUS, card=ResultCard(CardKind.REFUSED, lang=lang, message_key=card.message_key)
            )
        )
        assert not np.array_equal(
            np.asarray(image.crop(panel)), np.asarray(unnamed.crop(panel))
        )  # child named
        seen.append(np.asarray(image.crop(panel)))
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])

    # every pickup message fits the card's reason block (two lines, no "…") in every language
    lay = screen.layout
    inner = (panel[2] - panel[0]) - 2 * lay.px(26)
    for lang in LANGUAGES:
        for key in sorted(k for k in CATALOGUES[lang] if k.startswith("pickup.")):
            _, lines = fit(
                screen.faces, t(key, lang), inner, lay.px(52), min_size=lay.px(28), bold=True, max_lines=2
            )
            assert not lines[-1].endswith("…"), f"{lang}:{key} does not fit: {lines}"
            card = ResultCard(CardKind.REFUSED, lang=lang, name="Аружан", message_key=key)
            screen.render(ScreenState(status=STATUS, card=card, lang=lang)).save(shots / f"{key}-{lang}.png")


def test_today_list_shows_the_alert(
    shots: Path, ledger: Ledger, roster: Roster, make_gate: Callable[[str], Gate]
) -> None:
    gate = make_gate("guardian")
    gate.handle([badge(BORIS), badge(ARUZHAN)])
    today = today_from_ledger(ledger, MORNING.date(), TZ)
    listing = today.today_list(roster.children())
    calm = dt.datetime.combine(MORNING.date(), dt.time(17, 0))
    status = StatusInfo(clock=calm, roster_version=4)
    small = GateScreen(ScreenConfig(width=800, height=480))
    for lang in LANGUAGES:
        image = small.render_today(listing, lang, status)
        image.save(shots / f"today-pickup-alert-{lang}.png")
        assert colour_share(image, (0, 0, 800, 480), theme.BAD) > 0.001
    quiet = small.render_today(today_from_ledger(ledger, MORNING.date(), TZ).today_list([]), "en", status)
    assert colour_share(quiet, (0, 0, 800, 480), theme.BAD) == 0

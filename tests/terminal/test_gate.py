"""The gate: accepted only after COMMIT (MockFactory pins), faults and recovery, hostile payloads."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from gpiozero.pins.mock import MockFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.feedback import FeedbackConfig, GpioFeedback, InOut
from ledger.clock import FakeClock
from ledger.entry import decode_entry
from ledger.errors import DiskFull
from ledger.store import Ledger, open_ledger
from terminal.badge import encode_badge, new_serial
from terminal.decide import DecideConfig, Decider, Direction
from terminal.gate import Gate, OutcomeKind
from terminal.roster import Child, Roster, RosterData, open_roster
from terminal.screen.state import CardKind
from tests.conftest import READY_S, wait_until

TZ = ZoneInfo("Asia/Almaty")
GOOD = new_serial()
REVOKED = new_serial()
MORNING = dt.datetime(2026, 3, 2, 8, 0, tzinfo=TZ)
FAST = FeedbackConfig(accept_seconds=0.05, refuse_seconds=0.05, beep_seconds=0.01)
GREEN, RED, IN_BUTTON, OUT_BUTTON = 17, 27, 5, 6


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
    with open_roster(tmp_path / "roster.db") as r:
        r.install(
            RosterData(
                3,
                (Child("c-1", "Aruzhan", "Sun"), Child("c-2", "Ivan", "Moon")),
                ((GOOD, "c-1", False), (REVOKED, "c-2", True)),
                "x",
            )
        )
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
def feedback(factory: MockFactory) -> Iterator[GpioFeedback]:
    with GpioFeedback(FAST, pin_factory=factory) as fb:
        yield fb


@pytest.fixture
def tick() -> Tick:
    return Tick()


@pytest.fixture
def gate(ledger: Ledger, roster: Roster, clock: FakeClock, feedback: GpioFeedback, tick: Tick) -> Gate:
    decider = Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock)
    return Gate(ledger, decider, feedback, monotonic=tick)


def lit(factory: MockFactory, number: int) -> bool:
    """Whether the pin was ever driven high since the last reset of its history."""
    return any(bool(s.state) for s in factory.pin(number).states)


def forget(factory: MockFactory, *numbers: int) -> None:
    for number in numbers:
        factory.pin(number).clear_states()


def wait_for(condition: Any, timeout: float = READY_S) -> None:
    """Until ``condition()`` (feedback runs in gpiozero's threads, late on a loaded machine)."""
    wait_until(condition, "the feedback's pins", timeout, interval=0.005)


def kinds(ledger: Ledger) -> list[str]:
    return [decode_entry(data).kind for data in ledger.entries(0, ledger.size)]


def badge(serial: str) -> bytes:
    return encode_badge(serial).encode()


def test_accept_stores_then_lights_green(gate: Gate, ledger: Ledger, factory: MockFactory) -> None:
    outcome = gate.handle([badge(GOOD)])
    assert outcome.kind is OutcomeKind.ACCEPTED and outcome.index == 0
    entry = decode_entry(ledger.entries(0, 1)[0])
    assert (entry.kind, entry.child, entry.method) == ("in", "c-1", "qr")
    assert entry.evidence == {"badge": GOOD} and entry.roster_version == 3
    wait_for(lambda: lit(factory, GREEN))
    assert gate.card is not None and gate.card.kind is CardKind.ACCEPTED and gate.card.name == "Aruzhan"
    assert gate.card.direction is Direction.IN


def test_debounce_and_toggle(gate: Gate, ledger: Ledger, clock: FakeClock) -> None:
    assert gate.handle([badge(GOOD)]).kind is OutcomeKind.ACCEPTED
    for _ in range(5):  # the badge stays in front of the camera for a few frames
        assert gate.handle([badge(GOOD)]).kind is OutcomeKind.REPEAT
    assert gate.card is not None and gate.card.message_key == "card.already_in"
    clock.advance(9 * 3600)
    outcome = gate.handle([badge(GOOD)])
    assert outcome.kind is OutcomeKind.ACCEPTED and outcome.decision is not None
    assert outcome.decision.direction is Direction.OUT
    assert kinds(ledger) == ["in", "out"]


def test_buttons_choose_direction(gate: Gate, ledger: Ledger, factory: MockFactory) -> None:
    factory.pin(OUT_BUTTON).drive_low()
    wait_for(lambda: gate.feedback.selected_direction is InOut.OUT)
    assert gate.handle([badge(GOOD)]).kind is OutcomeKind.ACCEPTED
    assert kinds(ledger) == ["out"]


@pytest.mark.parametrize(
    ("payload", "reason", "child"),
    [
        (b"hello", "malformed", None),
        (badge(new_serial()), "unknown", None),
        (badge(REVOKED), "revoked", "c-2"),
    ],
    ids=["malformed", "unknown", "revoked"],  # stable ids: xdist workers must collect the same names
)
def test_refusals_light_red_and_log(  # noqa: PLR0917 - fixtures and parameters
    gate: Gate, ledger: Ledger, factory: MockFactory, payload: bytes, reason: str, child: str | None
) -> None:
    outcome = gate.handle([payload])
    assert outcome.kind is OutcomeKind.REFUSED and outcome.index == 0
    entry = decode_entry(ledger.entries(0, 1)[0])
    assert (entry.kind, entry.reason, entry.child) == ("rejected", reason, child)
    wait_for(lambda: lit(factory, RED))
    assert not lit(factory, GREEN)
    assert gate.card is not None and gate.card.kind is CardKind.REFUSED and gate.card.name is None


def test_refusals_are_quiet_and_rate_limited(
    gate: Gate, ledger: Ledger, tick: Tick, clock: FakeClock
) -> None:
    unknown = badge(new_serial())
    assert gate.handle([unknown]).kind is OutcomeKind.REFUSED
    assert gate.handle([unknown]).kind is OutcomeKind.IGNORED  # same code, next frame: no new beep
    tick.now += 5
    clock.advance(5)
    again = gate.handle([unknown])
    assert again.kind is OutcomeKind.REFUSED and again.index is None  # red again, but not logged again
    tick.now += 60
    clock.advance(60)
    assert gate.handle([unknown]).index == 1
    assert kinds(ledger) == ["rejected", "rejected"]


def test_alternating_refused_codes_stay_quiet(gate: Gate, tick: Tick) -> None:
    a, b = b"junk-a", b"junk-b"
    assert [o.kind for o in (gate.handle([a, b]), gate.handle([a]), gate.handle([b]))] == [
        OutcomeKind.REFUSED,
        OutcomeKind.IGNORED,
        OutcomeKind.IGNORED,
    ]
    for i in range(200):  # a flood of distinct codes: memory stays bounded
        gate.handle([str(i).encode()])
    assert len(gate._quiet) <= 64
    tick.now += 10
    assert gate.handle([a]).kind is OutcomeKind.REFUSED


def test_closed(gate: Gate, ledger: Ledger, clock: FakeClock) -> None:
    clock.advance(13 * 3600)  # 21:00
    outcome = gate.handle([badge(GOOD)])
    assert outcome.kind is OutcomeKind.REFUSED and outcome.decision is not None
    assert outcome.decision.reason == "closed"
    assert gate.card is not None and gate.card.message_key == "refused.closed"


def fill_disk(ledger: Ledger) -> None:
    pages = ledger._conn.execute("PRAGMA page_count").fetchone()[0]
    ledger._conn.execute(f"PRAGMA max_page_count={pages}")
    for pad in (200, 50, 10, 0):  # use up the free space inside the file's pages
        with pytest.raises(DiskFull):
            for i in range(2000):
                ledger.append("note", reason=f"f{i}", evidence={"pad": "x" * pad} if pad else None)


def free_disk(ledger: Ledger) -> None:
    ledger._conn.execute("PRAGMA max_page_count=1073741823")


def test_disk_full_never_acknowledges_then_recovers(gate: Gate, ledger: Ledger, factory: MockFactory) -> None:
    gate.handle([b"junk"])  # one entry so the database has its pages
    forget(factory, GREEN, RED)
    fill_disk(ledger)
    before = ledger.size
    for _ in range(3):
        outcome = gate.handle([badge(GOOD)])
        assert outcome.kind is OutcomeKind.FAULT and outcome.error and "DiskFull" in outcome.error
    assert ledger.size == before
    wait_for(lambda: lit(factory, RED))
    time.sleep(0.1)
    assert not lit(factory, GREEN)
    assert gate.status.disk_full and "error.disk_full" in gate.status.alerts
    assert gate.card is not None and gate.card.kind is CardKind.ERROR
    # a refusal whose audit entry cannot be stored does not break the loop
    assert gate.handle([badge(new_serial())]).kind is OutcomeKind.REFUSED
    free_disk(ledger)
    outcome = gate.handle([badge(GOOD)])
    assert outcome.kind is OutcomeKind.ACCEPTED and outcome.index == before
    assert (
        outcome.decision is not None and outcome.decision.direction is Direction.IN
    )  # the failed ones did not count
    wait_for(lambda: lit(factory, GREEN))
    assert not gate.status.disk_full and gate.status.alerts == ()


def test_database_locked_is_a_fault(gate: Gate, ledger: Ledger, tmp_path: Path, factory: MockFactory) -> None:
    import sqlite3

    ledger._conn.execute("PRAGMA busy_timeout = 10")
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        outcome = gate.handle([badge(GOOD)])
        assert outcome.kind is OutcomeKind.FAULT and gate.status.database_locked
    finally:
        other.execute("ROLLBACK")
        other.close()
    time.sleep(0.1)
    assert not lit(factory, GREEN)
    assert gate.handle([badge(GOOD)]).kind is OutcomeKind.ACCEPTED
    assert not gate.status.database_locked


def test_screen_renders(ledger: Ledger, roster: Roster, clock: FakeClock, feedback: GpioFeedback) -> None:
    from terminal.screen.config import ScreenConfig
    from terminal.screen.gate import GateScreen

    g = Gate(
        ledger,
        Decider(roster, DecideConfig(timezone="Asia/Almaty"), clock),
        feedback,
        GateScreen(ScreenConfig()),
    )
    g.handle([badge(GOOD)])
    image = g.render()
    assert image is not None and image.size == g.screen.size  # type: ignore[union-attr]


HOSTILE = st.one_of(
    st.binary(max_size=2953),
    st.text(max_size=700).map(lambda s: s.encode("utf-8", "surrogatepass")[:2953]),
    st.sampled_from(
        [
            b"\x00" * 2953,
            b"KG1" + b"\x00" * 17,
            b"'; DROP TABLE entries; --",
            b"$(rm -rf /)`reboot`|;&",
            b"\xff\xfe\xc0\x80",
            ("KG1" + "О" * 17).encode(),  # Cyrillic look-alikes
            encode_badge(GOOD).lower().encode(),
            (encode_badge(GOOD)[:-1] + ("A" if encode_badge(GOOD)[-1] != "A" else "B")).encode(),
            badge(REVOKED),
            badge(new_serial()),
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.lists(HOSTILE, max_size=6), max_size=4))
def test_hostile_payloads_are_refused_without_internal_errors(
    gate: Gate, ledger: Ledger, frames: list[list[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    # Gate.handle catches everything (the frame loop must go on), so "it did not raise" proves nothing:
    # an error it swallowed shows in the log, and a refusal must carry no error.
    caplog.set_level(logging.ERROR)
    for codes in frames:
        outcome = gate.handle(codes)
        assert outcome.kind in (OutcomeKind.IDLE, OutcomeKind.REFUSED, OutcomeKind.IGNORED)
        assert outcome.error is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "in" not in kinds(ledger) and "out" not in kinds(ledger)
    for data in ledger.entries(0, ledger.size):
        entry = decode_entry(data)
        assert entry.evidence == {} or set(entry.evidence) == {"badge"}


def test_broken_iterable_does_not_escape(gate: Gate) -> None:
    def codes() -> Iterator[bytes]:
        yield b"junk"
        raise RuntimeError("camera driver bug")

    assert gate.handle(codes()).kind is OutcomeKind.REFUSED


def test_stale_roster_still_works_but_every_entry_says_so(
    gate: Gate, ledger: Ledger, roster: Roster, clock: FakeClock
) -> None:
    data = RosterData(4, (Child("c-1", "Aruzhan", "Sun"),), ((GOOD, "c-1", False),), "y")
    roster.install(data, expires=MORNING + dt.timedelta(hours=1))
    assert gate.handle([badge(GOOD)]).kind is OutcomeKind.ACCEPTED
    assert "roster_stale" not in decode_entry(ledger.entries(0, 1)[0]).evidence
    assert not gate.status.roster_stale
    clock.advance(2 * 3600)  # the register's signed timestamp has expired: no fresh word on the roster
    assert gate.handle([badge(GOOD)]).kind is OutcomeKind.ACCEPTED
    entry = decode_entry(ledger.entries(1, 2)[0])
    assert entry.kind == "out" and entry.evidence == {"badge": GOOD, "roster_stale": True}
    assert gate.status.roster_stale and "error.roster_stale" in gate.status.alerts
    gate.handle([badge(new_serial())])  # refusals, too, record the stale roster
    refused = decode_entry(ledger.entries(2, 3)[0])
    assert refused.kind == "rejected" and refused.evidence["roster_stale"] is True

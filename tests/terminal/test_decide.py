"""Gate decisions: malformed, closed, unknown, revoked, debounce, in/out per day, buttons, rate limit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ledger.clock import FakeClock
from terminal.badge import encode_badge, new_serial
from terminal.decide import DecideConfig, Decider, Decision, Direction, Reason
from terminal.roster import Roster, RosterData, open_roster

TZ = "Asia/Almaty"
GOOD = new_serial()
REVOKED = new_serial()


def forged_check(payload: str) -> bytes:
    """The payload with a wrong check character."""
    return (payload[:-1] + ("A" if payload[-1] != "A" else "B")).encode()


def local(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(2026, 3, day, hour, minute, second, tzinfo=ZoneInfo(TZ))


@pytest.fixture
def roster(tmp_path: Path) -> Roster:
    from terminal.roster import Child

    r = open_roster(tmp_path / "roster.db")
    r.install(
        RosterData(
            7,
            (Child("c-1", "Aruzhan", "Sun"), Child("c-2", "Ivan", "Moon")),
            ((GOOD, "c-1", False), (REVOKED, "c-2", True)),
            "x",
        )
    )
    return r


@pytest.fixture
def decider(roster: Roster) -> Decider:
    return Decider(roster, DecideConfig(timezone=TZ))


def scan(d: Decider, payload: bytes | str, at: dt.datetime, sel: Direction | None = None) -> Decision:
    data = payload.encode() if isinstance(payload, str) else payload
    decision = d.decide(data, at, sel)
    if decision.accepted or decision.log_rejected:
        d.record(decision)  # as the gate does after the ledger stored it
    return decision


def test_accept_in_then_out(decider: Decider) -> None:
    first = scan(decider, encode_badge(GOOD), local(8))
    assert first.accepted and first.direction is Direction.IN and first.kind == "in"
    assert first.child is not None and first.child.id == "c-1"
    assert first.evidence == {"badge": GOOD} and first.method == "qr" and first.roster_version == 7
    second = scan(decider, encode_badge(GOOD), local(17))
    assert second.accepted and second.direction is Direction.OUT and second.kind == "out"
    third = scan(decider, encode_badge(GOOD), local(18))
    assert third.direction is Direction.IN  # back in after leaving


def test_new_day_starts_with_in(decider: Decider) -> None:
    assert scan(decider, encode_badge(GOOD), local(8)).direction is Direction.IN
    assert scan(decider, encode_badge(GOOD), local(8, day=3)).direction is Direction.IN


def test_decide_is_pure_until_recorded(decider: Decider) -> None:
    for _ in range(3):  # the ledger failed each time: nothing counts
        assert decider.decide(encode_badge(GOOD).encode(), local(8)).direction is Direction.IN


def test_debounce(decider: Decider) -> None:
    assert scan(decider, encode_badge(GOOD), local(8)).accepted
    repeat = scan(decider, encode_badge(GOOD), local(8, 1, 59))
    assert not repeat.accepted and repeat.reason is Reason.ALREADY_IN and repeat.is_repeat
    assert not repeat.log_rejected
    after = scan(decider, encode_badge(GOOD), local(8, 2, 0))
    assert after.accepted and after.direction is Direction.OUT
    again = scan(decider, encode_badge(GOOD), local(8, 2, 30))
    assert again.reason is Reason.ALREADY_OUT


def test_configurable_debounce(roster: Roster) -> None:
    d = Decider(roster, DecideConfig(timezone=TZ, debounce_seconds=10))
    assert scan(d, encode_badge(GOOD), local(8)).direction is Direction.IN
    assert scan(d, encode_badge(GOOD), local(8, 0, 9)).reason is Reason.ALREADY_IN
    assert scan(d, encode_badge(GOOD), local(8, 0, 10)).direction is Direction.OUT


def test_buttons(decider: Decider) -> None:
    assert scan(decider, encode_badge(GOOD), local(8), Direction.OUT).direction is Direction.OUT
    # within the window the other button is an explicit correction: accepted
    fix = scan(decider, encode_badge(GOOD), local(8, 0, 30), Direction.IN)
    assert fix.accepted and fix.direction is Direction.IN
    # the same button again within the window is a repeat
    assert scan(decider, encode_badge(GOOD), local(8, 1), Direction.IN).reason is Reason.ALREADY_IN
    assert scan(decider, encode_badge(GOOD), local(9), Direction.IN).direction is Direction.IN


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.MALFORMED),
        (forged_check(encode_badge(GOOD)), Reason.MALFORMED),
        (encode_badge(GOOD).lower().encode(), Reason.MALFORMED),
        (encode_badge(GOOD).encode() + b"\x00", Reason.MALFORMED),
        (b"'; DROP TABLE badges; --", Reason.MALFORMED),
        (b"\xff" * 2953, Reason.MALFORMED),
        (encode_badge(new_serial()).encode(), Reason.UNKNOWN),
        (encode_badge(REVOKED).encode(), Reason.REVOKED),
    ],
    ids=["empty", "forged-check", "lower-case", "trailing-nul", "sql", "long", "unknown", "revoked"],
)
def test_refusals(decider: Decider, payload: bytes, reason: Reason) -> None:
    decision = decider.decide(payload, local(9))
    assert not decision.accepted and decision.reason is reason and decision.kind == "rejected"
    assert decision.log_rejected and not decision.is_repeat
    if reason is Reason.MALFORMED:
        assert decision.evidence == {} and decision.serial is None


def test_revoked_names_the_child(decider: Decider) -> None:
    decision = decider.decide(encode_badge(REVOKED).encode(), local(9))
    assert decision.child is not None and decision.child.id == "c-2"


@pytest.mark.parametrize(("hour", "minute"), [(6, 59), (19, 30), (23, 0), (0, 0)])
def test_closed(decider: Decider, hour: int, minute: int) -> None:
    assert scan(decider, encode_badge(GOOD), local(hour, minute)).reason is Reason.CLOSED


@pytest.mark.parametrize(("hour", "minute"), [(7, 0), (19, 29)])
def test_open(decider: Decider, hour: int, minute: int) -> None:
    assert scan(decider, encode_badge(GOOD), local(hour, minute)).accepted


def test_hours_are_local_time(decider: Decider) -> None:
    utc = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 07:00 or 08:00 in Almaty
    assert decider.decide(encode_badge(GOOD).encode(), utc).accepted


def test_rejected_entries_are_rate_limited(decider: Decider) -> None:
    unknown = encode_badge(new_serial())
    assert scan(decider, unknown, local(9)).log_rejected
    assert not scan(decider, unknown, local(9, 0, 59)).log_rejected
    assert scan(decider, unknown, local(9, 1, 0)).log_rejected
    assert scan(decider, encode_badge(new_serial()), local(9, 1, 1)).log_rejected  # another serial
    assert scan(decider, b"junk", local(9, 1, 1)).log_rejected
    assert not scan(decider, b"other junk", local(9, 1, 2)).log_rejected  # malformed: one per minute


def test_rate_limit_memory_is_bounded(roster: Roster) -> None:
    d = Decider(roster, DecideConfig(timezone=TZ, max_rate_keys=8))
    for i in range(50):
        scan(d, encode_badge(new_serial()), local(9, 0, i))
    assert len(d._logged) <= 8


def test_clock_gives_now(roster: Roster) -> None:
    clock = FakeClock(int(local(10).timestamp() * 1000))
    d = Decider(roster, DecideConfig(timezone=TZ), clock)
    assert d.decide(encode_badge(GOOD).encode()).accepted
    clock.advance(12 * 3600)
    assert d.decide(encode_badge(GOOD).encode()).reason is Reason.CLOSED


def test_restore(decider: Decider) -> None:
    decider.restore("c-1", Direction.IN, local(8))
    assert scan(decider, encode_badge(GOOD), local(12)).direction is Direction.OUT


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="opens"):
        DecideConfig(opens=dt.time(20), closes=dt.time(7))
    with pytest.raises(ValueError, match="debounce"):
        DecideConfig(debounce_seconds=-1)

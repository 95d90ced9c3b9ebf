"""Gate decisions in mode ``qr``: badge bytes + time + In/Out selection -> accept (in/out) or refuse.

:meth:`Decider.decide` does not change any state: the gate calls :meth:`Decider.record` only after the
ledger stored the entry, so a failed COMMIT never counts as a check-in (nor as a logged refusal).

Order of checks: malformed (strict :func:`~terminal.badge.parse_badge`) -> closed (opening hours) ->
unknown / revoked (roster) -> debounce (the same child and direction within ``debounce_seconds``:
``already_in`` / ``already_out``, shown but not logged and not a red refusal).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from hardware.feedback import Direction
from ledger.clock import Clock
from terminal.badge import parse_badge
from terminal.errors import BadgeError
from terminal.roster import BadgeRecord, Child

METHOD = "qr"


class Reason(StrEnum):
    """Why a badge was refused; also the ``reason`` text of the ``rejected`` ledger entry."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    ALREADY_IN = "already_in"
    ALREADY_OUT = "already_out"
    CLOSED = "closed"
    FACE_MISMATCH = "face_mismatch"  # qr+face: the face is not the badge's child (terminal/face/check.py)
    NO_FACE = "no_face"  # qr+face: no usable face seen with the badge


#: Debounce repeats: shown on screen, but not a refusal worth a red light or a ledger entry.
REPEATS = frozenset({Reason.ALREADY_IN, Reason.ALREADY_OUT})


class RosterLookup(Protocol):
    """What the decider needs from :class:`terminal.roster.Roster`."""

    @property
    def version(self) -> int | None: ...

    def lookup(self, serial: str) -> BadgeRecord | None: ...


@dataclass(frozen=True)
class DecideConfig:
    """Debounce window, opening hours (local time in ``timezone``; ``None``: the system's), log rate."""

    debounce_seconds: float = 120.0
    opens: dt.time = dt.time(7, 0)
    closes: dt.time = dt.time(19, 30)
    timezone: str | None = None
    rejected_log_seconds: float = 60.0
    max_rate_keys: int = 4096

    def __post_init__(self) -> None:
        if not 0 <= self.debounce_seconds <= 86400:
            raise ValueError("decide.debounce_seconds: must be in [0, 86400]")
        if not 0 <= self.rejected_log_seconds <= 86400:
            raise ValueError("decide.rejected_log_seconds: must be in [0, 86400]")
        if self.opens >= self.closes:
            raise ValueError("decide.opens: must be before decide.closes")

    def tzinfo(self) -> dt.tzinfo | None:
        """The zone opening hours and "that day" are reckoned in (``None``: local system time)."""
        return ZoneInfo(self.timezone) if self.timezone else None


@dataclass(frozen=True)
class Decision:
    """The outcome for one code. Accepted: ``child``, ``direction``, ``method``, ``evidence``.

    Refused: ``reason``; ``log_rejected`` says whether this refusal should become a ``rejected`` ledger
    entry (rate-limited per badge serial and reason). Evidence never holds the raw, possibly hostile
    bytes: only a serial that passed the strict parser.
    """

    at: dt.datetime
    accepted: bool
    child: Child | None = None
    direction: Direction | None = None
    reason: Reason | None = None
    serial: str | None = None
    method: str = METHOD
    evidence: Mapping[str, str | int] = field(default_factory=dict)
    roster_version: int | None = None
    log_rejected: bool = False

    @property
    def kind(self) -> str:
        """The ledger entry kind: ``in``, ``out`` or ``rejected``."""
        return str(self.direction) if self.accepted and self.direction else "rejected"

    @property
    def is_repeat(self) -> bool:
        """A debounce repeat (already in/out): not a refusal of the badge."""
        return self.reason in REPEATS


@dataclass
class _ChildDay:
    day: dt.date
    direction: Direction
    at: dt.datetime


class Decider:
    """Decides on badge scans against the roster; remembers each child's state for the current day."""

    def __init__(self, roster: RosterLookup, config: DecideConfig | None = None, clock: Clock | None = None):
        self.roster = roster
        self.config = config or DecideConfig()
        self.clock = clock
        self._tz = self.config.tzinfo()
        self._days: dict[str, _ChildDay] = {}
        self._logged: dict[tuple[str | None, Reason], dt.datetime] = {}

    def now(self) -> dt.datetime:
        """The current time from ``clock`` (or the system), timezone-aware."""
        if self.clock is None:
            return dt.datetime.now(dt.UTC)
        return dt.datetime.fromtimestamp(self.clock.read().time_ms / 1000, dt.UTC)

    def _local(self, when: dt.datetime) -> dt.datetime:
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.astimezone(self._tz)

    def decide(
        self, code: bytes, now: dt.datetime | None = None, selected_direction: Direction | None = None
    ) -> Decision:
        """Decide on one scanned code's exact bytes. Never raises for any input bytes."""
        at = self._local(now or self.now())
        version = self.roster.version
        try:
            serial = parse_badge(code).serial
        except BadgeError:
            return self._refuse(at, Reason.MALFORMED, None, None, version)
        if not self.config.opens <= at.time().replace(tzinfo=None) < self.config.closes:
            return self._refuse(at, Reason.CLOSED, serial, None, version)
        record = self.roster.lookup(serial)
        if record is None:
            return self._refuse(at, Reason.UNKNOWN, serial, None, version)
        if record.revoked:
            return self._refuse(at, Reason.REVOKED, serial, record.child, version)
        child = record.child
        state = self._days.get(child.id)
        if state is not None and state.day != at.date():
            state = None
        if selected_direction is not None:
            direction = selected_direction
        elif state is None or state.direction is Direction.OUT:
            direction = Direction.IN
        else:
            direction = Direction.OUT
        recent = state is not None and (at - state.at).total_seconds() < self.config.debounce_seconds
        # a repeat of the last scan, unless staff chose the other direction with a button
        if state is not None and recent and selected_direction in (None, state.direction):
            reason = Reason.ALREADY_IN if state.direction is Direction.IN else Reason.ALREADY_OUT
            evidence = {"badge": serial}
            return Decision(at, False, child, state.direction, reason, serial, METHOD, evidence, version)
        return Decision(
            at, True, child, direction, None, serial, evidence={"badge": serial}, roster_version=version
        )

    def _refuse(
        self, at: dt.datetime, reason: Reason, serial: str | None, child: Child | None, version: int | None
    ) -> Decision:
        last = self._logged.get((serial, reason))
        log = last is None or not 0 <= (at - last).total_seconds() < self.config.rejected_log_seconds
        evidence = {"badge": serial} if serial else {}
        return Decision(at, False, child, None, reason, serial, METHOD, evidence, version, log)

    def record(self, decision: Decision) -> None:
        """Note a decision whose ledger entry was stored (an in/out, or a logged refusal)."""
        if decision.accepted and decision.child is not None and decision.direction is not None:
            self._days[decision.child.id] = _ChildDay(decision.at.date(), decision.direction, decision.at)
        elif decision.reason is not None and decision.log_rejected:
            if len(self._logged) >= self.config.max_rate_keys:
                self._prune(decision.at)
            self._logged[(decision.serial, decision.reason)] = decision.at

    def restore(self, child_id: str, direction: Direction, at: dt.datetime) -> None:
        """Seed a child's state from a stored entry (e.g. today's ledger after a restart)."""
        local = self._local(at)
        self._days[child_id] = _ChildDay(local.date(), direction, local)

    def _prune(self, now: dt.datetime) -> None:
        window = self.config.rejected_log_seconds
        self._logged = {k: t for k, t in self._logged.items() if 0 <= (now - t).total_seconds() < window}
        while len(self._logged) >= self.config.max_rate_keys:  # a flood within one window: forget the oldest
            del self._logged[min(self._logged, key=self._logged.__getitem__)]

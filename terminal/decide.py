"""Gate decisions: badge bytes (or, in mode ``face``, a recognised child) + time + In/Out selection ->
accept (in/out) or refuse.

:meth:`Decider.decide` does not change any state: the gate calls :meth:`Decider.record` only after the
ledger stored the entry, so a failed COMMIT never counts as a check-in (nor as a logged refusal).

Order of checks: malformed (strict :func:`~terminal.badge.parse_badge`) -> closed (opening hours) ->
unknown / revoked (roster) -> debounce (the same child and direction within ``debounce_seconds``:
``already_in`` / ``already_out``, shown but not logged and not a red refusal).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hardware.feedback import InOut
from ledger.clock import Clock
from terminal.badge import parse_badge
from terminal.errors import BadgeError
from terminal.roster import BadgeRecord, Child, Guardian

METHOD = "qr"


class Direction(StrEnum):
    """Which way a child goes through the gate: the decision, and the kind of its ledger entry."""

    IN = "in"
    OUT = "out"

    @classmethod
    def chosen(cls, way: InOut | None) -> Direction | None:
        """The direction the In/Out buttons selected, or ``None`` (automatic)."""
        return None if way is None else cls(way.value)

    def signal(self) -> InOut:
        """The hardware's In/Out signal for this direction (what the lights and sounder show)."""
        return InOut(self.value)


class Reason(StrEnum):
    """Why a badge was refused; also the ``reason`` text of the ``rejected`` ledger entry."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    ALREADY_IN = "already_in"
    ALREADY_OUT = "already_out"
    CLOSED = "closed"
    # authorized pickup (terminal.pickup)
    PICKUP_UNAUTHORIZED = "pickup_unauthorized"
    GUARDIAN_REVOKED = "guardian_revoked"
    GUARDIAN_ONLY = "guardian_only"
    PICKUP_NEEDS_GUARDIAN = "pickup_needs_guardian"
    FACE_MISMATCH = "face_mismatch"  # qr+face: the face is not the badge's child (terminal/face/check.py)
    NO_FACE = "no_face"  # qr+face: no usable face seen with the badge
    FACE_UNKNOWN = "face_unknown"  # face: nobody close enough, or two children too close to call
    FACE_LIVENESS = "face_liveness"  # face: the face matched but moved like a picture (never accepted)
    NO_FACE_CONSENT = "no_face_consent"  # face: the child has no face consent (use the badge)


#: Debounce repeats: shown on screen, but not a refusal worth a red light or a ledger entry.
REPEATS = frozenset({Reason.ALREADY_IN, Reason.ALREADY_OUT})


class RosterLookup(Protocol):
    """What the decider needs from :class:`terminal.roster.Roster`."""

    @property
    def version(self) -> int | None: ...

    def lookup(self, serial: str) -> BadgeRecord | None: ...


#: Allowed range of each duration setting, in seconds: checked by :class:`DecideConfig` and used by the
#: ``[gate]`` reader (terminal/config.py) so its message names the range.
SECONDS_RANGE: Mapping[str, tuple[float, float]] = {
    "debounce_seconds": (0.0, 86400.0),
    "rejected_log_seconds": (0.0, 86400.0),
}


@dataclass(frozen=True)
class DecideConfig:
    """Debounce window, opening hours (local time in ``timezone``; ``None``: the system's), log rate.

    The one definition of these settings: ``[gate]`` in the terminal's TOML is read into it
    (``TerminalConfig.gate.decide``), and its errors name the TOML key.
    """

    debounce_seconds: float = 120.0
    opens: dt.time = dt.time(7, 0)
    closes: dt.time = dt.time(19, 30)
    timezone: str | None = None
    rejected_log_seconds: float = 60.0
    max_rate_keys: int = 4096

    def __post_init__(self) -> None:
        for name, (low, high) in SECONDS_RANGE.items():
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"gate.{name}: expected a number in [{low:g}, {high:g}]")
        if self.opens >= self.closes:
            raise ValueError("gate.hours: the gate must open before it closes (opens < closes)")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"gate.timezone: {self.timezone!r} is not an IANA time zone") from None

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
    evidence: Mapping[str, str | int | bool] = field(default_factory=dict)
    roster_version: int | None = None
    log_rejected: bool = False
    guardian: Guardian | None = None  # the adult whose badge was shown for a pickup (terminal.pickup)

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
        """Decide on one scanned code's exact bytes. Never raises for any input bytes.

        On a stale roster (its signed metadata expired, :meth:`terminal.roster.Roster.is_stale`) the
        decision is the same, and its evidence says ``roster_stale: true`` so every entry records it.
        """
        return self._stale(self._decide(code, now, selected_direction))

    def decide_child(
        self,
        child: Child,
        now: dt.datetime | None = None,
        selected_direction: Direction | None = None,
        *,
        method: str = "face",
        evidence: Mapping[str, str | int | bool] | None = None,
    ) -> Decision:
        """Decide for a child already recognised without a badge (mode ``face``), by the badge's rules:
        opening hours, face consent, in/out by the child's state today, debounce. ``evidence`` is kept."""
        at = self._local(now or self.now())
        version = self.roster.version
        extra = dict(evidence or {})
        if not self.config.opens <= at.time().replace(tzinfo=None) < self.config.closes:
            decision = self._refuse(at, Reason.CLOSED, None, child, version)
        elif not child.consent_face:  # the face flow offers only consenting children; never trust it
            decision = self._refuse(at, Reason.NO_FACE_CONSENT, None, child, version)
        else:
            decision = self._direction(at, child, selected_direction, None, version)
        return self._stale(replace(decision, method=method, evidence={**decision.evidence, **extra}))

    def refusal(
        self,
        reason: Reason,
        now: dt.datetime | None = None,
        *,
        method: str = METHOD,
        evidence: Mapping[str, str | int | bool] | None = None,
    ) -> Decision:
        """A refusal that no badge produced (an unknown face, a failed liveness check), rate-limited
        like a badge's: ``log_rejected`` once per reason within ``rejected_log_seconds``."""
        at = self._local(now or self.now())
        decision = self._refuse(at, reason, None, None, self.roster.version)
        merged = {**decision.evidence, **(evidence or {})}
        return self._stale(replace(decision, method=method, evidence=merged))

    def rate_limited(self, decision: Decision) -> Decision:
        """``decision`` (a refusal turned so after the decider, e.g. a face mismatch) with ``log_rejected``
        set by the same per serial-and-reason window as the decider's own refusals."""
        if decision.accepted or decision.reason is None:
            return decision
        return replace(decision, log_rejected=self._should_log(decision.serial, decision.reason, decision.at))

    def _stale(self, decision: Decision) -> Decision:
        is_stale = getattr(self.roster, "is_stale", None)
        if is_stale is not None and is_stale(decision.at):
            return replace(decision, evidence={**decision.evidence, "roster_stale": True})
        return decision

    def _decide(self, code: bytes, now: dt.datetime | None, selected_direction: Direction | None) -> Decision:
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
        return self._direction(at, record.child, selected_direction, serial, version)

    def _direction(
        self,
        at: dt.datetime,
        child: Child,
        selected_direction: Direction | None,
        serial: str | None,
        version: int | None,
    ) -> Decision:
        """In or out by the child's state today (or the buttons), or a debounce repeat."""
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
            evidence: dict[str, str | int | bool] = {"badge": serial} if serial else {}
            return Decision(at, False, child, state.direction, reason, serial, METHOD, evidence, version)
        badge: dict[str, str | int | bool] = {"badge": serial} if serial else {}
        return Decision(at, True, child, direction, None, serial, evidence=badge, roster_version=version)

    def _refuse(
        self, at: dt.datetime, reason: Reason, serial: str | None, child: Child | None, version: int | None
    ) -> Decision:
        log = self._should_log(serial, reason, at)
        evidence: dict[str, str | int | bool] = {"badge": serial} if serial else {}
        return Decision(at, False, child, None, reason, serial, METHOD, evidence, version, log)

    def _should_log(self, serial: str | None, reason: Reason, at: dt.datetime) -> bool:
        last = self._logged.get((serial, reason))
        return last is None or not 0 <= (at - last).total_seconds() < self.config.rejected_log_seconds

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

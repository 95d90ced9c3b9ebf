"""Today's per-child state, rebuilt from the ledger: who came in, who left, and when.

After a restart the service reads today's ``in``/``out`` entries back (newest chunks first, stopping
once a whole chunk is older than the day), so debounce and in/out direction carry on where they were:
:meth:`Today.restore_into` seeds a :class:`~terminal.decide.Decider`. The same state, kept up to date
with :meth:`Today.record`, gives the staff "today" list (:meth:`Today.today_list`), where a refused
pickup (``rejected`` with reason ``pickup_unauthorized`` / ``guardian_revoked``) flags the child's line.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.entry import decode_entry
from ledger.errors import EntryError
from terminal.decide import Decider, Direction
from terminal.pickup import ALERT_REASONS
from terminal.roster import Child
from terminal.screen.state import TodayChild, TodayGroup, TodayList

log = logging.getLogger(__name__)
CHUNK = 512
#: Entries this much older than midnight end the backwards scan (an unsynced clock may be off a bit).
SLACK = dt.timedelta(hours=12)
#: ``rejected`` entry reasons that put an alert on the child's line of the staff list.
ALERTS = frozenset(str(reason) for reason in ALERT_REASONS)
PICKUP_ALERT = "today.pickup_alert"


class EntryReader(Protocol):
    """What this module needs from :class:`ledger.store.LedgerReader` (or a :class:`~ledger.store.Ledger`)."""

    @property
    def size(self) -> int: ...

    def entries(self, start: int, end: int) -> list[bytes]: ...


@dataclass(frozen=True)
class ChildDay:
    """One child's day so far: first arrival, last departure, and the last direction and time."""

    child_id: str
    direction: Direction
    at: dt.datetime
    first_in: dt.datetime | None = None
    last_out: dt.datetime | None = None


class Today:
    """Per-child state for one local day in ``tz`` (``None``: the system's zone)."""

    def __init__(self, day: dt.date, tz: dt.tzinfo | None = None) -> None:
        self.day = day
        self.tz = tz
        self.children: dict[str, ChildDay] = {}
        self.alerts: dict[str, str] = {}  # child id -> message key for the staff list

    def _local(self, when: dt.datetime) -> dt.datetime:
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(self.tz)

    def record(self, child_id: str, direction: Direction, at: dt.datetime) -> None:
        """Note a stored ``in``/``out`` entry; entries of other days are ignored."""
        local = self._local(at)
        if local.date() != self.day:
            return
        old = self.children.get(child_id)
        if old is None:
            first_in = local if direction is Direction.IN else None
            last_out = local if direction is Direction.OUT else None
            self.children[child_id] = ChildDay(child_id, direction, local, first_in, last_out)
            return
        first_in = old.first_in
        if direction is Direction.IN and (first_in is None or local < first_in):
            first_in = local
        last_out = old.last_out
        if direction is Direction.OUT and (last_out is None or local > last_out):
            last_out = local
        latest = (direction, local) if local >= old.at else (old.direction, old.at)
        self.children[child_id] = ChildDay(child_id, latest[0], latest[1], first_in, last_out)

    def alert(self, child_id: str, reason: str, at: dt.datetime) -> None:
        """Flag ``child_id`` for a refused pickup; other reasons and other days are ignored."""
        if reason in ALERTS and self._local(at).date() == self.day:
            self.alerts[child_id] = PICKUP_ALERT

    def restore_into(self, decider: Decider) -> int:
        """Seed ``decider`` with every child's last direction today; returns how many children."""
        for state in self.children.values():
            decider.restore(state.child_id, state.direction, state.at)
        return len(self.children)

    def today_list(self, children: Sequence[Child]) -> TodayList:
        """The read-only staff list: every roster child by group, in (arrival), left (in–out) or absent."""
        groups: dict[str, list[TodayChild]] = {}
        for child in children:
            state = self.children.get(child.id)
            time_in = time_out = None
            if state is not None:
                first = state.first_in or (state.at if state.direction is Direction.IN else None)
                time_in = first.time().replace(second=0, microsecond=0) if first else None
                if state.direction is Direction.OUT and state.last_out is not None:
                    time_out = state.last_out.time().replace(second=0, microsecond=0)
                    time_in = time_in or time_out
            alert = self.alerts.get(child.id)
            groups.setdefault(child.group, []).append(TodayChild(child.name, time_in, time_out, alert))
        return TodayList(
            self.day, tuple(TodayGroup(name, tuple(kids)) for name, kids in sorted(groups.items()))
        )


def _entries_backwards(reader: EntryReader) -> Iterable[list[bytes]]:
    end = reader.size
    while end > 0:
        start = max(0, end - CHUNK)
        yield reader.entries(start, end)
        end = start


def today_from_ledger(reader: EntryReader, day: dt.date, tz: dt.tzinfo | None = None) -> Today:
    """Rebuild ``day``'s per-child state from the ``in``/``out`` entries in the ledger."""
    today = Today(day, tz)
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    oldest_ms = int((midnight - SLACK).timestamp() * 1000)
    found: list[tuple[int, str, Direction]] = []
    alerts: list[tuple[int, str, str]] = []
    for chunk in _entries_backwards(reader):
        any_recent = False
        for data in chunk:
            try:
                entry = decode_entry(data)
            except EntryError:  # the verifier reports it; the gate must still start
                log.warning("today: skipping an undecodable entry")
                continue
            if entry.time_ms >= oldest_ms:
                any_recent = True
            if entry.kind in ("in", "out") and entry.child is not None:
                found.append((entry.time_ms, entry.child, Direction(entry.kind)))
            elif entry.kind == "rejected" and entry.child is not None and entry.reason in ALERTS:
                alerts.append((entry.time_ms, entry.child, entry.reason))
        if not any_recent:
            break
    for time_ms, child, direction in sorted(found):
        today.record(child, direction, dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC))
    for time_ms, child, reason in alerts:
        today.alert(child, reason, dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC))
    return today

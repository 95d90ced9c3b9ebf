"""Who was on a kindergarten's roster on a given day, from the published roster versions.

The version in force on a day is the newest one published before that day ended (local time). Days
before the first version use the first version: the register knows nothing older, so the roster as first
published stands for them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from register.store.base import Store


@dataclass(frozen=True)
class Child:
    id: str
    name: str
    group: str


@dataclass(frozen=True)
class Guardians:
    """A roster version's guardians: who may pick up whom, and whose badge each serial is."""

    children: dict[str, frozenset[str]]  # guardian id -> the children they may pick up
    badges: dict[str, str]  # guardian badge serial -> guardian id (revoked ones too: the serial is theirs)


class RosterHistory:
    """The children (and guardians) of each roster version of one kindergarten, by publication time."""

    def __init__(
        self,
        versions: list[tuple[int, dict[str, Child]]],
        zone: ZoneInfo,
        guardians: list[Guardians] | None = None,
    ) -> None:
        self._times = [t for t, _ in versions]
        self._children = [c for _, c in versions]
        self._guardians = guardians if guardians is not None else [Guardians({}, {}) for _ in versions]
        self.zone = zone
        self._on: dict[dt.date, int] = {}
        self.known: dict[str, Child] = {}
        for children in self._children:
            self.known.update(children)

    @classmethod
    def load(cls, store: Store, kindergarten: str, zone: ZoneInfo) -> RosterHistory:
        with store._tx(write=False) as sql:
            rows = sql.all(
                "SELECT created_ms, document FROM roster_versions WHERE kindergarten = ? ORDER BY version",
                (kindergarten,),
            )
        versions, guardians = [], []
        for created, raw in rows:
            doc = json.loads(bytes(raw))
            children = doc["children"]
            versions.append(
                (int(created), {c["id"]: Child(c["id"], c["name"], c["group"]) for c in children})
            )
            guardians.append(
                Guardians(
                    {g["id"]: frozenset(g.get("children", ())) for g in doc.get("guardians", ())},
                    {b["serial"]: b["guardian"] for b in doc.get("badges", ()) if "guardian" in b},
                )
            )
        return cls(versions, zone, guardians)

    def _version_on(self, day: dt.date) -> int:
        """The index of the version in force on ``day``: the newest published before the day ended."""
        found = self._on.get(day)
        if found is None:
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.zone)
            i = bisect.bisect_right(self._times, int(end.timestamp() * 1000)) - 1
            found = self._on[day] = max(i, 0)
        return found

    def on(self, day: dt.date) -> dict[str, Child]:
        """The children on the roster on ``day`` (empty if no roster was ever published)."""
        if not self._times:
            return {}
        return self._children[self._version_on(day)]

    def guardians_on(self, day: dt.date) -> Guardians:
        """The guardians of the version in force on ``day`` (none if no roster was ever published)."""
        if not self._times:
            return Guardians({}, {})
        return self._guardians[self._version_on(day)]

    def day_of(self, time_ms: int) -> dt.date:
        """The local date of ``time_ms`` in this kindergarten's zone."""
        return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).astimezone(self.zone).date()

    def enrolled_since(self, child: str, day: dt.date) -> int | None:
        """When the child's current stay on the roster began (publication time, ms) as of ``day``: the
        first of the unbroken run of versions holding the child up to the one in force; ``None`` if the
        child is not on it that day."""
        if child not in self.on(day):
            return None
        i = self._version_on(day)
        while i > 0 and child in self._children[i - 1]:
            i -= 1
        return self._times[i]

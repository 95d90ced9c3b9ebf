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


class RosterHistory:
    """The children of each roster version of one kindergarten, by publication time."""

    def __init__(self, versions: list[tuple[int, dict[str, Child]]], zone: ZoneInfo) -> None:
        self._times = [t for t, _ in versions]
        self._children = [c for _, c in versions]
        self._zone = zone
        self._on: dict[dt.date, dict[str, Child]] = {}
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
        versions = []
        for created, doc in rows:
            children = json.loads(bytes(doc))["children"]
            versions.append(
                (int(created), {c["id"]: Child(c["id"], c["name"], c["group"]) for c in children})
            )
        return cls(versions, zone)

    def on(self, day: dt.date) -> dict[str, Child]:
        """The children on the roster on ``day`` (empty if no roster was ever published)."""
        if not self._times:
            return {}
        found = self._on.get(day)
        if found is None:
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self._zone)
            i = bisect.bisect_right(self._times, int(end.timestamp() * 1000)) - 1
            found = self._on[day] = self._children[max(i, 0)]
        return found

"""A simulated gate for tests, benchmarks and the demo: a real signed ledger on a fake clock, delivered
to a real :class:`~register.service.Register` (verified, stored and cosigned like a push).

Only the physical world and time are simulated: entries are appended by :mod:`ledger.store` and ingested
through :meth:`Register.ingest`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ledger.clock import FakeClock
from ledger.store import Appended, Ledger, open_ledger
from register.ingest import Batch
from register.service import Register
from register.store import Device, Store


class Gate:
    """One enrolled gate whose clock the caller moves; ``deliver`` pushes what the register lacks."""

    def __init__(
        self, store: Store, directory: Path, origin: str, *, kindergarten: str, gate: str, start: dt.datetime
    ) -> None:
        self.clock = FakeClock(int(start.timestamp() * 1000), synced=True)
        self.ledger: Ledger = open_ledger(directory / "ledger.db", origin=origin, clock=self.clock)
        self.device: Device = store.add_device(
            self.ledger.vkey, kindergarten=kindergarten, gate=gate, now_ms=0
        )
        self.delivered = 0
        self.ledger.append("boot")

    def at(self, when: dt.datetime) -> Gate:
        """Move wall and monotonic time together to ``when`` (never backwards)."""
        target = int(when.timestamp() * 1000)
        if target > self.clock.time_ms:
            self.clock.advance((target - self.clock.time_ms) / 1000)
        return self

    def append(self, kind: str, **fields: Any) -> Appended:
        return self.ledger.append(kind, **fields)

    def deliver(self, register: Register) -> int:
        """Ingest every entry not yet delivered, as one push; returns how many."""
        size = self.ledger.size
        if size == self.delivered:
            return 0
        old = self.delivered
        batch = Batch(
            self.ledger.origin,
            old,
            tuple(self.ledger.entries(old, size)),
            self.ledger.checkpoint(),
            old,
            tuple(self.ledger.consistency_proof(old, size)) if old else (),
        )
        register.ingest(
            register.store.device_by_origin(self.ledger.origin) or self.device, batch, evidence=b""
        )
        self.delivered = size
        return size - old

    def close(self) -> None:
        self.ledger.close()


def local(day: dt.date, hhmm: str, tz: str = "Asia/Almaty") -> dt.datetime:
    """``day`` at local ``HH:MM[:SS]`` in ``tz``."""
    parts = [int(x) for x in hhmm.split(":")] + [0]
    return dt.datetime(day.year, day.month, day.day, parts[0], parts[1], parts[2], tzinfo=ZoneInfo(tz))

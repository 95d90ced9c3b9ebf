"""A simulated gate for tests, benchmarks and the demo: a real signed ledger on a fake clock, delivered
to a real :class:`~register.service.Register` (verified, stored and cosigned like a push).

Only the physical world and time are simulated: entries are appended by :mod:`ledger.store` and ingested
through :meth:`Register.ingest`. :class:`SimulatedLog` builds a device log in memory instead (canonical
entries, the RFC 9162 tree, a signed checkpoint per push) for benchmarks and the demo's month, where
thousands of durable appends (one fsync each) would take minutes; what the register receives is the same.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.clock import FakeClock
from ledger.entry import Entry, encode_entry
from ledger.merkle import CompactRange, leaf_hash
from ledger.note import Ed25519Signer
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


class SimulatedLog:
    """A device log built in memory, one boot with a synced clock; pushed to a register like the agent does.

    The key is derived from ``origin`` (reproducible data). The tree's root is kept every ``mark_every``
    entries and at :meth:`mark`, so :meth:`deliver` signs a checkpoint per push of at most ``max_batch``.
    """

    def __init__(self, origin: str, *, start_ms: int, mark_every: int = 4096) -> None:
        seed = hashlib.sha256(b"kgate-simulated-log:" + origin.encode()).digest()
        self.origin = origin
        self.signer = Ed25519Signer(origin, Ed25519PrivateKey.from_private_bytes(seed))
        self.boot_id = seed[:16]
        self.boot_ms = start_ms
        self.entries: list[bytes] = []
        self._tree = CompactRange()
        self._marks: list[int] = [0]
        self._roots: dict[int, bytes] = {0: self._tree.root()}
        self._every = mark_every
        self.append("boot", start_ms)

    @property
    def size(self) -> int:
        return len(self.entries)

    def append(self, kind: str, time_ms: int, **fields: Any) -> int:
        """Append one entry dated ``time_ms`` (monotonic time follows the wall clock); returns its index."""
        index = len(self.entries)
        mono_ns = (time_ms - self.boot_ms) * 1_000_000
        data = encode_entry(Entry(index, kind, time_ms, True, self.boot_id, max(mono_ns, 0), **fields))
        self.entries.append(data)
        self._tree.append(leaf_hash(data))
        if self.size % self._every == 0:
            self.mark()
        return index

    def mark(self) -> None:
        """Keep the root at the current size: a push may end here."""
        if self._marks[-1] != self.size:
            self._marks.append(self.size)
            self._roots[self.size] = self._tree.root()

    def enrol(self, store: Store, *, kindergarten: str, gate: str, now_ms: int = 0) -> Device:
        return store.add_device(self.signer.vkey, kindergarten=kindergarten, gate=gate, now_ms=now_ms)

    def deliver(self, register: Register, *, upto: int | None = None, max_batch: int = 4096) -> int:
        """Push entries the register lacks up to ``upto`` (default: the newest mark); returns how many."""
        device = register.store.device_by_origin(self.origin)
        if device is None:
            raise LookupError(f"{self.origin} is not enrolled")
        end = self._marks[-1] if upto is None else upto
        if end not in self._roots:
            raise ValueError(f"no root kept at size {end}: call mark() there")
        start = device.size
        while start < end:
            i = bisect.bisect_right(self._marks, min(end, start + max_batch)) - 1
            stop = self._marks[i]
            if stop <= start:
                raise ValueError(f"no mark between {start} and {start + max_batch}")
            note = sign_checkpoint(Checkpoint(self.origin, stop, self._roots[stop]), self.signer)
            batch = Batch(self.origin, start, tuple(self.entries[start:stop]), note, 0, ())
            register.ingest(device, batch, evidence=b"")
            start = stop
        return max(0, end - device.size)


def local(day: dt.date, hhmm: str, tz: str = "Asia/Almaty") -> dt.datetime:
    """``day`` at local ``HH:MM[:SS]`` in ``tz``."""
    parts = [int(x) for x in hhmm.split(":")] + [0]
    return dt.datetime(day.year, day.month, day.day, parts[0], parts[1], parts[2], tzinfo=ZoneInfo(tz))

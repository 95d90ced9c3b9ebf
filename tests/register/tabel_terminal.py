"""Kindergartens whose entries come from the gate's own code: :class:`terminal.gate.Gate` with its
:class:`~terminal.decide.Decider` (and, where a test needs them, :class:`~terminal.pickup.Pickup` and the
real :class:`~terminal.face.check.FaceCheck`) appends to a real signed ledger on a fake clock; the ledger is
pushed to a real :class:`~register.service.Register` (verified, stored, cosigned) and the табель is built
from what the register stored. Nothing here writes an entry by hand except :meth:`Terminal.correct` (no
gate code writes corrections: staff tools append them to the ledger, as here).

Also the fixture that runs each табель test under more than one process time zone (``TZ``), so a naive
local-time bug cannot hide behind a test machine that happens to run in UTC or in the kindergarten's zone.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hardware.feedback import InOut, NullFeedback
from ledger.clock import FakeClock
from ledger.note import CosignatureSigner
from ledger.store import Ledger, open_ledger
from register.ingest import Batch
from register.roster_csv import parse_csv
from register.service import Register
from register.store import Store, open_store
from register.store.roster import import_roster, roster_document
from register.tabel import calendar, status
from register.tabel.audit import Flag
from terminal.badge import encode_badge
from terminal.decide import DecideConfig, Decider
from terminal.face.check import FaceCheck
from terminal.gate import Gate, Outcome, OutcomeKind
from terminal.pickup import Pickup, PickupPolicy
from terminal.roster import Roster, open_roster, parse_roster

ZONE = ZoneInfo("Asia/Almaty")
MONTH = "2025-03"
START = dt.datetime(2025, 2, 27, 12, 0, tzinfo=ZONE)

#: process time zones each табель test runs under, whatever the machine's: the kindergartens' own zone
#: (where a naive local-time conversion happens to give the right answer) and one far from both it and
#: UTC (where a naive conversion, or one that assumes the process runs in UTC, gives another day).
PROCESS_ZONES = ("Asia/Almaty", "America/Los_Angeles")


@pytest.fixture(params=PROCESS_ZONES, autouse=False)
def process_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with ``TZ`` set to each of :data:`PROCESS_ZONES` (``time.tzset`` applies it)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    try:
        yield request.param
    finally:
        monkeypatch.undo()
        time.tzset()


def at(day: int, hhmm: str, month: int = 3) -> dt.datetime:
    """2025-``month``-``day`` at local ``HH:MM[:SS]`` in Almaty."""
    parts = [int(x) for x in hhmm.split(":")] + [0]
    return dt.datetime(2025, month, day, parts[0], parts[1], parts[2], tzinfo=ZONE)


def roster_csv(
    children: list[str], guardians: dict[str, list[str]] | None = None, consent: tuple[str, ...] = ()
) -> bytes:
    """A roster CSV: children (group by number), guardians with the children they may pick up."""
    lines = ["kind,id,name,group,consent_face,guardian_of"]
    for c in children:
        group = "Күншуақ" if int(c[-3:]) % 2 else "Солнышко"
        lines.append(f"child,{c},Бала {c},{group},{'yes' if c in consent else 'no'},")
    for g, kids in (guardians or {}).items():
        lines.append(f"guardian,{g},Ата-ана {g},,,{';'.join(kids)}")
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Terminal:
    """One kindergarten gate running the terminal's code, with its own key, ledger and local roster."""

    register: Register
    now: list[float]
    directory: Path
    kindergarten: str
    name: str
    clock: FakeClock
    ledger: Ledger
    roster: Roster
    gate: Gate
    delivered: int = 0

    @classmethod
    def open(
        cls,
        register: Register,
        now: list[float],
        directory: Path,
        name: str,
        *,
        kindergarten: str,
        roster: bytes,
        opens: dt.time = dt.time(6, 0),
        closes: dt.time = dt.time(23, 0),
        synced: bool = True,
        pickup: bool = False,
        face_check: FaceCheck | None = None,
    ) -> Terminal:
        """A gate enrolled for ``kindergarten`` with the roster document ``roster`` installed locally.

        The gate's own hours are wider than the register's calendar by default (a gate configured
        06:00-23:00): the gate accepts, the register's audit judges."""
        directory.mkdir(parents=True, exist_ok=True)
        clock = FakeClock(int(START.timestamp() * 1000), synced=synced)
        ledger = open_ledger(directory / "ledger.db", origin=f"reg.test/kgate/{name}", clock=clock)
        register.store.add_device(ledger.vkey, kindergarten=kindergarten, gate=name, now_ms=0)
        local = open_roster(directory / "roster.db")
        local.install(parse_roster(roster))
        config = DecideConfig(opens=opens, closes=closes, timezone="Asia/Almaty", debounce_seconds=60)
        decider = Decider(local, config, clock)
        pairing = Pickup(local, PickupPolicy("guardian")) if pickup else None
        gate = Gate(
            ledger, decider, NullFeedback(), pickup=pairing, face_check=face_check,
            monotonic=lambda: clock.mono_ns / 1e9,
        )  # fmt: skip
        ledger.append("boot", evidence={"software": "kgate test"})
        return cls(register, now, directory, kindergarten, name, clock, ledger, local, gate)

    def at(self, when: dt.datetime) -> Terminal:
        """Move wall and monotonic time together to ``when``; a test asking for an earlier time is wrong
        (a clock set back is :attr:`clock`'s ``time_ms``, changed on purpose)."""
        target = int(when.timestamp() * 1000)
        assert target >= self.clock.time_ms, f"{self.name}: {when} is before the gate's clock"
        self.clock.advance((target - self.clock.time_ms) / 1000)
        return self

    def scan(
        self, serial: str, when: dt.datetime | None = None, *, direction: InOut | None = None
    ) -> Outcome:
        """Show badge ``serial`` to the gate (at ``when``); returns what the gate did."""
        if when is not None:
            self.at(when)
        self.gate.feedback.select_direction(direction)
        return self.gate.handle_code(encode_badge(serial).encode())

    def accepted(
        self, serial: str, when: dt.datetime | None = None, *, direction: InOut | None = None
    ) -> int:
        """:meth:`scan`, which must be accepted; the ledger index of the entry."""
        outcome = self.scan(serial, when, direction=direction)
        assert outcome.kind is OutcomeKind.ACCEPTED, outcome
        assert outcome.index is not None
        return outcome.index

    def correct(self, ref: int, reason: str, when: dt.datetime | None = None) -> int:
        """A staff correction voiding entry ``ref`` (appended to the gate's ledger)."""
        if when is not None:
            self.at(when)
        return self.ledger.append("correction", ref=ref, reason=reason).index

    def deliver(self, when: dt.datetime | None = None) -> int:
        """Push what the register lacks, the register's clock at ``when`` (default: the gate's time)."""
        self.now[0] = when.timestamp() if when is not None else self.clock.time_ms / 1000
        size = self.ledger.size
        if size == self.delivered:
            return 0
        old = self.delivered
        batch = Batch(
            self.ledger.origin, old, tuple(self.ledger.entries(old, size)), self.ledger.checkpoint(), old,
            tuple(self.ledger.consistency_proof(old, size)) if old else (),
        )  # fmt: skip
        device = self.register.store.device_by_origin(self.ledger.origin)
        assert device is not None
        self.register.ingest(device, batch, evidence=b"")
        self.delivered = size
        return size - old

    def close(self) -> None:
        if self.gate.face_check is not None:
            self.gate.face_check.close()
        self.roster.close()
        self.ledger.close()


@dataclass
class Town:
    """A register with kindergartens, their published rosters and their terminals."""

    store: Store
    register: Register
    now: list[float]
    root: Path
    url: str
    terminals: list[Terminal] = field(default_factory=list)

    def publish(self, kindergarten: str, csv: bytes, when: dt.datetime = START) -> bytes:
        """Import a roster version at the register (published at ``when``); its document."""
        import_roster(self.store, kindergarten, parse_csv(csv), now_ms=int(when.timestamp() * 1000))
        return roster_document(self.store, kindergarten)

    def serials(self, kindergarten: str) -> dict[str, str]:
        """Child or guardian id -> its active badge serial, from the register's newest document."""
        doc = json.loads(roster_document(self.store, kindergarten))
        return {b.get("child") or b["guardian"]: b["serial"] for b in doc["badges"] if not b["revoked"]}

    def terminal(self, name: str, *, kindergarten: str, roster: bytes | None = None, **kw: Any) -> Terminal:
        doc = roster if roster is not None else roster_document(self.store, kindergarten)
        t = Terminal.open(
            self.register, self.now, self.root / name, name, kindergarten=kindergarten, roster=doc, **kw
        )
        self.terminals.append(t)
        return t

    def tabel(self, kindergarten: str, month: str = MONTH) -> status.Tabel:
        return status.build(self.store, kindergarten, month)

    def flags(self, kindergarten: str, rule: str, month: str = MONTH) -> list[Flag]:
        return [f for f in self.tabel(kindergarten, month).flags if f.rule == rule]

    def close(self) -> None:
        for t in self.terminals:
            t.close()
        self.store.close()


def open_town(root: Path, url: str | None = None) -> Town:
    url = url or f"sqlite:///{root / 'register.db'}"
    store = open_store(url)
    now = [START.timestamp()]
    register = Register(store, CosignatureSigner.generate("reg.test"), clock=lambda: now[0])
    for k in ("K1", "K2"):
        calendar.set_settings(store, k, rate_tiyn=250_000)
    return Town(store, register, now, root, url)


def row(t: status.Tabel, child: str, day: dt.date) -> status.Row:
    return next(r for r in t.rows if r.child == child and r.date == day)


def forged(document: bytes, **changes: Any) -> bytes:
    """A roster document as a tampered gate might install it: ``changes`` merged in, version raised."""
    doc = json.loads(document)
    for key, extra in changes.items():
        doc[key] = [*doc.get(key, []), *extra]
    doc["version"] += 1
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()

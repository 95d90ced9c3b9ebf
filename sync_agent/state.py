"""The agent's own durable state: what the register cosigned, the last error, the last success.

One small SQLite file (``DIR/sync-state.db``, WAL + ``synchronous=FULL``, asserted at open) with a
single row updated in one transaction per change, so a kill -9 at any point leaves either the old or
the new state. Losing it is harmless too: the agent resyncs from the register's ``GET /v1/state``.
The device ledger itself is never written by the agent.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self

from ledger.errors import StorageError
from ledger.sqlite import open_durable, open_readonly, transaction
from sync_agent.errors import StateError

STATE_FILE: Final = "sync-state.db"
WHAT: Final = "sync state"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    origin TEXT,
    ledger_path TEXT,
    cosigned_size INTEGER,
    cosigned_note TEXT,
    last_error TEXT,
    last_error_time REAL,
    last_success_time REAL,
    last_contact_time REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    halted TEXT
);
INSERT OR IGNORE INTO state (one) VALUES (1);
"""


@dataclass(frozen=True)
class Snapshot:
    """The state row as read: ``cosigned_size`` is None until the first acknowledgement or resync."""

    origin: str | None
    ledger_path: str | None
    cosigned_size: int | None
    cosigned_note: str | None
    last_error: str | None
    last_error_time: float | None
    last_success_time: float | None
    last_contact_time: float | None
    failures: int
    halted: str | None


class SyncState:
    """Read and update the state directory; every method is one transaction."""

    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.directory = Path(directory)
        path = self.directory / STATE_FILE
        try:
            if readonly:
                if not path.is_file():
                    raise StateError(f"no sync state in {self.directory} (run `kgate sync once` first)")
                self._conn = open_readonly(path, what=WHAT, follow=True)
            else:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
                self._conn = open_durable(path, what=WHAT)
        except OSError as exc:  # StorageError included: one line naming the file
            raise StateError(f"cannot open sync state {path}: {exc}") from None
        if not readonly:
            try:
                self._conn.executescript(_SCHEMA)
            except sqlite3.Error as exc:
                self._conn.close()
                raise StateError(f"{path} is not a readable sync state ({exc})") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _update(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            with transaction(self._conn, self.directory / STATE_FILE, what=WHAT):
                self._conn.execute(f"UPDATE state SET {sql} WHERE one = 1", params)  # noqa: S608
        except StorageError as exc:
            raise StateError(f"cannot write sync state in {self.directory}: {exc}") from None

    def read(self) -> Snapshot:
        try:
            row = self._conn.execute(
                "SELECT origin, ledger_path, cosigned_size, cosigned_note, last_error, last_error_time, "
                "last_success_time, last_contact_time, failures, halted FROM state WHERE one = 1"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read sync state in {self.directory}: {exc}") from None
        if row is None:
            raise StateError(f"sync state in {self.directory} is empty")
        types = (str, str, int, str, str, float, float, float, int, str)
        for value, kind, name in zip(row, types, Snapshot.__dataclass_fields__, strict=True):
            if (value is not None and not isinstance(value, kind)) or isinstance(value, bool):
                raise StateError(f"sync state in {self.directory} is damaged: {name} holds {value!r:.40}")
        return Snapshot(*row)

    def bind(self, origin: str, ledger_path: Path) -> None:
        """Tie the state to one log; refuse a state directory that belongs to another origin."""
        snap = self.read()
        if snap.origin is not None and snap.origin != origin:
            raise StateError(
                f"state directory {self.directory} belongs to the log {snap.origin!r}, not {origin!r}"
            )
        self._update("origin = ?, ledger_path = ?", (origin, str(Path(ledger_path).resolve())))

    def record_ack(self, size: int, note: str | None, *, now: float | None = None) -> None:
        """Store a verified cosigned checkpoint (the acknowledgement) and clear the error."""
        t = time.time() if now is None else now
        self._update(
            "cosigned_size = ?, cosigned_note = ?, last_success_time = ?, last_contact_time = ?, "
            "last_error = NULL, failures = 0",
            (size, note, t, t),
        )

    def record_contact(self, *, now: float | None = None) -> None:
        """The register answered (a heartbeat or an empty round): clear the error."""
        t = time.time() if now is None else now
        self._update("last_success_time = ?, last_contact_time = ?, last_error = NULL, failures = 0", (t, t))

    def record_error(self, message: str, *, halt: bool = False, now: float | None = None) -> int:
        """Store a failed round's one-line reason; ``halt`` stops pushing until cleared. Returns failures."""
        t = time.time() if now is None else now
        self._update(
            "last_error = ?, last_error_time = ?, failures = failures + 1" + (", halted = ?" if halt else ""),
            (message, t, message) if halt else (message, t),
        )
        return self.read().failures

    def clear_halt(self) -> None:
        """An operator has looked at the alarm: allow pushing again."""
        self._update("halted = NULL, failures = 0", ())

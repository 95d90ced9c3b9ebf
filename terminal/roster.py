"""The terminal's local roster in SQLite: children, their badge serials (with revocation), and a version.

A roster file is JSON::

    {"version": 3,
     "children": [{"id": "c-001", "name": "Aruzhan", "group": "Sunflowers", "consent_face": false}],
     "badges": [{"serial": "MFRGGZDFMZTWQ2LK", "child": "c-001", "revoked": false}]}

:func:`load_roster` validates the whole file, then installs it in one transaction. Versions never go
back: a lower version than the installed one is refused, and the same version is accepted only with the
same content (a re-run of the same load is a no-op).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from kgate.bounded import MiB, loads_json_limited, read_limited
from kgate.errors import InputError
from kgate.text import UnsafeText, check_display_text
from ledger.sqlite import open_durable, storage_error, transaction
from terminal.badge import SERIAL_ALPHABET, SERIAL_CHARS
from terminal.errors import TerminalError

#: Child ids are what the ledger stores (``ledger.entry``'s id pattern).
CHILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
SERIAL = re.compile(f"[{SERIAL_ALPHABET}]{{{SERIAL_CHARS}}}")
MAX_TEXT = 200
WHAT = "roster database"
MAX_ROSTER_BYTES = 16 * MiB
#: Lists and objects nest three deep in a valid roster; a little room for what a future format adds.
MAX_ROSTER_DEPTH = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS children (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, grp TEXT NOT NULL, consent_face INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS badges (
    serial TEXT PRIMARY KEY, child TEXT NOT NULL REFERENCES children(id), revoked INTEGER NOT NULL
) STRICT;
"""


class RosterError(TerminalError, ValueError):
    """A roster file is invalid, or would roll the installed roster back; nothing was installed."""


@dataclass(frozen=True)
class Child:
    """One enrolled child as the gate needs them."""

    id: str
    name: str
    group: str
    consent_face: bool = False


@dataclass(frozen=True)
class BadgeRecord:
    """A badge serial the roster knows: whose it is and whether it was revoked."""

    serial: str
    child: Child
    revoked: bool


@dataclass(frozen=True)
class RosterData:
    """A validated roster file, not yet installed."""

    version: int
    children: tuple[Child, ...]
    badges: tuple[tuple[str, str, bool], ...]  # serial, child id, revoked
    digest: str


def _text(value: object, where: str, *, pattern: re.Pattern[str] | None = None) -> str:
    if type(value) is not str or not value or len(value) > MAX_TEXT or "\x00" in value:
        raise RosterError(f"{where}: must be non-empty text of at most {MAX_TEXT} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise RosterError(f"{where}: {value!r} does not match {pattern.pattern}")
    return value


def _display(value: object, where: str) -> str:
    """Text shown on the gate screen and the табель: no control, bidi or unassigned characters."""
    text = _text(value, where)
    try:
        return check_display_text(text, where)
    except UnsafeText as exc:
        raise RosterError(str(exc)) from None


def _bool(value: object, where: str) -> bool:
    if type(value) is not bool:
        raise RosterError(f"{where}: must be true or false")
    return value


def _object(value: object, where: str, keys: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RosterError(f"{where}: must be an object")
    for key in value:
        if key not in keys:
            raise RosterError(f"{where}.{key}: unknown key")
    for key in required:
        if key not in value:
            raise RosterError(f"{where}.{key}: required")
    return value


def parse_roster(raw: bytes) -> RosterData:
    """Validate a roster file's bytes; raises :class:`RosterError` naming the first bad field."""
    if len(raw) > MAX_ROSTER_BYTES:
        raise RosterError(f"roster file of {len(raw)} bytes is larger than {MAX_ROSTER_BYTES}")
    try:
        doc = loads_json_limited(raw, "roster file", max_depth=MAX_ROSTER_DEPTH)
    except InputError as exc:
        raise RosterError(str(exc)) from None
    top = _object(doc, "roster", {"version", "children", "badges"}, {"version", "children", "badges"})
    version = top["version"]
    if type(version) is not int or not 1 <= version < 2**62:
        raise RosterError("roster.version: must be a positive integer")
    if not isinstance(top["children"], list) or not isinstance(top["badges"], list):
        raise RosterError("roster.children and roster.badges must be lists")
    children: dict[str, Child] = {}
    for i, item in enumerate(top["children"]):
        where = f"roster.children[{i}]"
        obj = _object(item, where, {"id", "name", "group", "consent_face"}, {"id", "name", "group"})
        child = Child(
            id=_text(obj["id"], f"{where}.id", pattern=CHILD_ID),
            name=_display(obj["name"], f"{where}.name"),
            group=_display(obj["group"], f"{where}.group"),
            consent_face=_bool(obj.get("consent_face", False), f"{where}.consent_face"),
        )
        if child.id in children:
            raise RosterError(f"{where}.id: {child.id!r} appears twice")
        children[child.id] = child
    badges: dict[str, tuple[str, str, bool]] = {}
    for i, item in enumerate(top["badges"]):
        where = f"roster.badges[{i}]"
        obj = _object(item, where, {"serial", "child", "revoked"}, {"serial", "child"})
        serial = _text(obj["serial"], f"{where}.serial", pattern=SERIAL)
        child_id = _text(obj["child"], f"{where}.child")
        if child_id not in children:
            raise RosterError(f"{where}.child: {child_id!r} is not in roster.children")
        if serial in badges:
            raise RosterError(f"{where}.serial: {serial} appears twice")
        badges[serial] = (serial, child_id, _bool(obj.get("revoked", False), f"{where}.revoked"))
    canonical = json.dumps(
        [version, sorted(map(_child_row, children.values())), sorted(badges.values())],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return RosterData(version, tuple(children.values()), tuple(badges.values()), digest)


def _child_row(child: Child) -> tuple[str, str, str, bool]:
    return (child.id, child.name, child.group, child.consent_face)


class Roster:
    """The installed roster; badge lookups by serial. Use :func:`open_roster` or :func:`load_roster`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    @property
    def version(self) -> int | None:
        """The installed roster version, or ``None`` when none was ever loaded."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return None if row is None else int(row[0])

    def lookup(self, serial: str) -> BadgeRecord | None:
        """The badge with this serial and its child, or ``None`` when the roster does not know it."""
        row = self._conn.execute(
            "SELECT b.serial, b.revoked, c.id, c.name, c.grp, c.consent_face "
            "FROM badges b JOIN children c ON c.id = b.child WHERE b.serial = ?",
            (serial,),
        ).fetchone()
        if row is None:
            return None
        return BadgeRecord(row[0], Child(row[2], row[3], row[4], bool(row[5])), bool(row[1]))

    def child(self, child_id: str) -> Child | None:
        """The child with this id, or ``None``."""
        row = self._conn.execute(
            "SELECT id, name, grp, consent_face FROM children WHERE id = ?", (child_id,)
        ).fetchone()
        return None if row is None else Child(row[0], row[1], row[2], bool(row[3]))

    def children(self) -> list[Child]:
        """Every child, by group then name."""
        rows = self._conn.execute("SELECT id, name, grp, consent_face FROM children ORDER BY grp, name, id")
        return [Child(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def install(self, data: RosterData) -> bool:
        """Install a validated roster in one transaction; ``False`` if this exact roster is installed.

        Raises :class:`RosterError` for a lower version, or the same version with other content.
        """
        conn = self._conn
        with transaction(conn, self.path, what=WHAT):
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if "version" in meta:
                installed = int(meta["version"])
                if data.version < installed:
                    raise RosterError(f"roster version {data.version} is older than installed {installed}")
                if data.version == installed:
                    if meta.get("digest") != data.digest:
                        raise RosterError(f"roster version {installed} is installed with other content")
                    return False
            conn.execute("DELETE FROM badges")
            conn.execute("DELETE FROM children")
            conn.executemany("INSERT INTO children VALUES (?, ?, ?, ?)", map(_child_row, data.children))
            conn.executemany("INSERT INTO badges VALUES (?, ?, ?)", data.badges)
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("version", str(data.version)), ("digest", data.digest)],
            )
        return True


def open_roster(db_path: Path | str) -> Roster:
    """Open (creating if needed) the roster database at ``db_path`` (a StorageError names the file)."""
    path = Path(db_path)
    conn = open_durable(path, what=WHAT)
    try:
        conn.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        conn.close()
        raise storage_error(exc, path, WHAT) from None
    return Roster(conn, path)


def load_roster(db_path: Path | str, json_path: Path | str) -> Roster:
    """Validate the roster file at ``json_path`` and install it into ``db_path``; returns the open roster."""
    try:
        raw = read_limited(json_path, MAX_ROSTER_BYTES, "roster file")
    except InputError as exc:
        raise RosterError(str(exc)) from None
    data = parse_roster(raw)
    roster = open_roster(db_path)
    try:
        roster.install(data)
    except BaseException:
        roster.close()
        raise
    return roster

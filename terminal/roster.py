"""The terminal's local roster in SQLite: children, guardians, badge serials (with revocation), a version.

A roster file is JSON (the register's ``roster_document``; ``kindergarten``, ``guardians`` and a
child's ``consent_face`` and ``language`` optional)::

    {"version": 3, "kindergarten": "k-7",
     "children": [{"id": "c-001", "name": "Aruzhan", "group": "Sunflowers", "consent_face": false,
                   "language": "kk"}],
     "guardians": [{"id": "g-01", "name": "Dana", "children": ["c-001"]}],
     "badges": [{"serial": "MFRGGZDFMZTWQ2LK", "child": "c-001", "revoked": false},
                {"serial": "ONSWG4TFOQYTEMZU", "guardian": "g-01", "revoked": false}]}

:func:`load_roster` validates the whole file, then installs it in one transaction. Versions never go
back: a lower version than the installed one is refused, and the same version is accepted only with the
same content (a re-run of the same load is a no-op). A roster delivered over TUF also carries the
expiry of the metadata that vouched for it (:meth:`Roster.install` ``expires``): past it the roster is
*stale* (still used, flagged on screen and in every entry).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from kgate.bounded import MiB, loads_json_limited, read_limited
from kgate.errors import InputError
from kgate.text import UnsafeText, check_display_text
from ledger.sqlite import open_durable, storage_error, transaction
from terminal.badge import SERIAL_ALPHABET, SERIAL_CHARS
from terminal.errors import TerminalError
from terminal.i18n import LANGUAGES, is_lang

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
    id TEXT PRIMARY KEY, name TEXT NOT NULL, grp TEXT NOT NULL, consent_face INTEGER NOT NULL,
    language TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS badges (
    serial TEXT PRIMARY KEY, child TEXT NOT NULL REFERENCES children(id), revoked INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS guardians (id TEXT PRIMARY KEY, name TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS guardian_children (
    guardian TEXT NOT NULL REFERENCES guardians(id), child TEXT NOT NULL REFERENCES children(id),
    PRIMARY KEY (guardian, child)
) STRICT;
CREATE TABLE IF NOT EXISTS guardian_badges (
    serial TEXT PRIMARY KEY, guardian TEXT NOT NULL REFERENCES guardians(id), revoked INTEGER NOT NULL
) STRICT;
"""


#: The face template database beside the roster (terminal/face/templates.py): retention prunes it.
FACES_DB = "faces.db"


class RosterError(TerminalError, ValueError):
    """A roster file is invalid, or would roll the installed roster back; nothing was installed."""


@dataclass(frozen=True)
class Child:
    """One enrolled child as the gate needs them; ``language``: the family's (kk, ru, en), if known.

    The gate's card for this child is in ``language`` (else the gate's language).
    """

    id: str
    name: str
    group: str
    consent_face: bool = False
    language: str | None = None


@dataclass(frozen=True)
class BadgeRecord:
    """A badge serial the roster knows: whose it is and whether it was revoked."""

    serial: str
    child: Child
    revoked: bool


@dataclass(frozen=True)
class Guardian:
    """An adult who may pick up ``children`` (child ids) at check-out."""

    id: str
    name: str
    children: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GuardianBadge:
    """A guardian's badge serial: whose it is and whether it was revoked."""

    serial: str
    guardian: Guardian
    revoked: bool


@dataclass(frozen=True)
class RosterData:
    """A validated roster file, not yet installed."""

    version: int
    children: tuple[Child, ...]
    badges: tuple[tuple[str, str, bool], ...]  # serial, child id, revoked
    digest: str
    guardians: tuple[Guardian, ...] = ()
    guardian_badges: tuple[tuple[str, str, bool], ...] = ()  # serial, guardian id, revoked
    kindergarten: str | None = None


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
    top = _object(
        doc,
        "roster",
        {"version", "kindergarten", "children", "guardians", "badges"},
        {"version", "children", "badges"},
    )
    version = top["version"]
    if type(version) is not int or not 1 <= version < 2**62:
        raise RosterError("roster.version: must be a positive integer")
    kindergarten = None
    if "kindergarten" in top:
        kindergarten = _text(top["kindergarten"], "roster.kindergarten", pattern=CHILD_ID)
    for key in ("children", "guardians", "badges"):
        if not isinstance(top.get(key, []), list):
            raise RosterError(f"roster.{key}: must be a list")
    children = _children(top["children"])
    guardians = _guardians(top.get("guardians", []), children)
    badges: dict[str, tuple[str, str, bool]] = {}
    guardian_badges: dict[str, tuple[str, str, bool]] = {}
    for i, item in enumerate(top["badges"]):
        where = f"roster.badges[{i}]"
        obj = _object(item, where, {"serial", "child", "guardian", "revoked"}, {"serial"})
        serial = _text(obj["serial"], f"{where}.serial", pattern=SERIAL)
        if serial in badges or serial in guardian_badges:
            raise RosterError(f"{where}.serial: {serial} appears twice")
        revoked = _bool(obj.get("revoked", False), f"{where}.revoked")
        if ("child" in obj) == ("guardian" in obj):
            raise RosterError(f"{where}: needs exactly one of child or guardian")
        if "child" in obj:
            owner_key, section, known, out = "child", "children", set(children), badges
        else:
            owner_key, section, known, out = "guardian", "guardians", set(guardians), guardian_badges
        owner = _text(obj[owner_key], f"{where}.{owner_key}")
        if owner not in known:
            raise RosterError(f"{where}.{owner_key}: {owner!r} is not in roster.{section}")
        out[serial] = (serial, owner, revoked)
    parts: list[object] = [version, sorted(map(_child_row, children.values())), sorted(badges.values())]
    languages = sorted((c.id, c.language) for c in children.values() if c.language is not None)
    if guardians or guardian_badges or kindergarten is not None or languages:  # old digests stay
        parts += [
            kindergarten,
            sorted((g.id, g.name, sorted(g.children)) for g in guardians.values()),
            sorted(guardian_badges.values()),
        ]
    if languages:  # a roster without languages keeps the digest it always had
        parts.append(languages)
    canonical = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return RosterData(
        version,
        tuple(children.values()),
        tuple(badges.values()),
        digest,
        tuple(guardians.values()),
        tuple(guardian_badges.values()),
        kindergarten,
    )


def _children(items: list[object]) -> dict[str, Child]:
    children: dict[str, Child] = {}
    for i, item in enumerate(items):
        where = f"roster.children[{i}]"
        keys = {"id", "name", "group", "consent_face", "language"}
        obj = _object(item, where, keys, {"id", "name", "group"})
        child = Child(
            id=_text(obj["id"], f"{where}.id", pattern=CHILD_ID),
            name=_display(obj["name"], f"{where}.name"),
            group=_display(obj["group"], f"{where}.group"),
            consent_face=_bool(obj.get("consent_face", False), f"{where}.consent_face"),
            language=_language(obj.get("language"), f"{where}.language"),
        )
        if child.id in children:
            raise RosterError(f"{where}.id: {child.id!r} appears twice")
        children[child.id] = child
    return children


def _language(value: object, where: str) -> str | None:
    """A family language: one the gate speaks (``null`` or absent: the gate's own)."""
    if value is None:
        return None
    if not isinstance(value, str) or not is_lang(value):
        raise RosterError(f"{where}: {value!r} is not one of {', '.join(LANGUAGES)}")
    return value


def _guardians(items: list[object], children: Mapping[str, Child]) -> dict[str, Guardian]:
    guardians: dict[str, Guardian] = {}
    for i, item in enumerate(items):
        where = f"roster.guardians[{i}]"
        obj = _object(item, where, {"id", "name", "children"}, {"id", "name", "children"})
        gid = _text(obj["id"], f"{where}.id", pattern=CHILD_ID)
        if gid in guardians or gid in children:
            raise RosterError(f"{where}.id: {gid!r} appears twice")
        if not isinstance(obj["children"], list):
            raise RosterError(f"{where}.children: must be a list of child ids")
        kids = [_text(c, f"{where}.children[{j}]") for j, c in enumerate(obj["children"])]
        for j, kid in enumerate(kids):
            if kid not in children:
                raise RosterError(f"{where}.children[{j}]: {kid!r} is not in roster.children")
        guardians[gid] = Guardian(gid, _text(obj["name"], f"{where}.name"), frozenset(kids))
    return guardians


def _child_row(child: Child) -> tuple[str, str, str, bool]:
    """What the digest covers of a child (a language is added only where one is set)."""
    return (child.id, child.name, child.group, child.consent_face)


def _child_record(child: Child) -> tuple[str, str, str, bool, str | None]:
    return (*_child_row(child), child.language)


def _child(row: Sequence[Any]) -> Child:
    """A :class:`Child` from ``id, name, grp, consent_face, language``."""
    return Child(row[0], row[1], row[2], bool(row[3]), row[4])


class Roster:
    """The installed roster; badge lookups by serial. Use :func:`open_roster` or :func:`load_roster`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.faces_removed = 0  # children whose face templates the last install's retention deleted

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
            "SELECT b.serial, b.revoked, c.id, c.name, c.grp, c.consent_face, c.language "
            "FROM badges b JOIN children c ON c.id = b.child WHERE b.serial = ?",
            (serial,),
        ).fetchone()
        if row is None:
            return None
        return BadgeRecord(row[0], _child(row[2:]), bool(row[1]))

    def child(self, child_id: str) -> Child | None:
        """The child with this id, or ``None``."""
        row = self._conn.execute(
            "SELECT id, name, grp, consent_face, language FROM children WHERE id = ?", (child_id,)
        ).fetchone()
        return None if row is None else _child(row)

    def children(self) -> list[Child]:
        """Every child, by group then name."""
        rows = self._conn.execute(
            "SELECT id, name, grp, consent_face, language FROM children ORDER BY grp, name, id"
        )
        return [_child(r) for r in rows]

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def kindergarten(self) -> str | None:
        """The kindergarten the installed roster is for, when it said so."""
        return self._meta("kindergarten")

    @property
    def expires(self) -> dt.datetime | None:
        """Until when the register's signed metadata vouched for this roster (``None``: no expiry known)."""
        value = self._meta("expires")
        return None if value is None else dt.datetime.fromisoformat(value)

    def is_stale(self, now: dt.datetime) -> bool:
        """Whether the roster's vouched-for time has passed: still used, but flagged as stale."""
        expires = self.expires
        return expires is not None and now >= expires

    def guardian(self, guardian_id: str) -> Guardian | None:
        """The guardian with this id and the children they may pick up, or ``None``."""
        row = self._conn.execute("SELECT id, name FROM guardians WHERE id = ?", (guardian_id,)).fetchone()
        if row is None:
            return None
        kids = self._conn.execute("SELECT child FROM guardian_children WHERE guardian = ?", (row[0],))
        return Guardian(row[0], row[1], frozenset(k[0] for k in kids))

    def lookup_guardian(self, serial: str) -> GuardianBadge | None:
        """The guardian badge with this serial, or ``None`` (child badges are :meth:`lookup`'s)."""
        row = self._conn.execute(
            "SELECT guardian, revoked FROM guardian_badges WHERE serial = ?", (serial,)
        ).fetchone()
        guardian = None if row is None else self.guardian(row[0])
        return None if guardian is None else GuardianBadge(serial, guardian, bool(row[1]))

    def install(
        self, data: RosterData, expires: dt.datetime | None = None, *, face_key: Path | None = None
    ) -> bool:
        """Install a validated roster in one transaction; ``False`` if this exact roster is installed.

        ``expires`` (aware): until when the signed metadata that delivered it is valid; re-installing
        the same roster with a later ``expires`` only moves the expiry forward. Raises
        :class:`RosterError` for a lower version, the same version with other content, or a roster of
        another kindergarten than the installed one.

        Then, on every call (a changed roster or not), face template retention: the templates beside
        the roster keep only children in it with face consent (``face_key``: the template key, default
        ``face.key`` beside the roster). The one install path, so ``kgate roster load`` and the sync
        agent's TUF update both run it. A retention failure is a :class:`RosterError` saying the roster
        itself was installed.
        """
        changed = self._install(data, expires)
        self.faces_removed = self._retain_faces(face_key)
        return changed

    def _retain_faces(self, face_key: Path | None) -> int:
        """Face template retention (docs/faces.md); without a template database there is nothing to do
        and numpy/cryptography are not even imported (never dlib: templates need no face models)."""
        if not self.path.with_name(FACES_DB).exists():
            return 0
        from terminal.face.errors import TemplateStoreError  # noqa: PLC0415 - templates import us
        from terminal.face.templates import prune_for_roster  # noqa: PLC0415

        try:
            return prune_for_roster(self.path, self.children(), face_key)
        except TemplateStoreError as exc:
            raise RosterError(
                f"roster v{self.version} installed, but face templates could not be pruned: {exc}"
            ) from None

    def _install(self, data: RosterData, expires: dt.datetime | None) -> bool:
        if expires is not None and expires.tzinfo is None:
            raise ValueError("expires must be timezone-aware")
        conn = self._conn
        with transaction(conn, self.path, what=WHAT):
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if "version" in meta:
                installed = int(meta["version"])
                if data.version < installed:
                    raise RosterError(f"roster version {data.version} is older than installed {installed}")
                held = meta.get("kindergarten")
                if held is not None and data.kindergarten is not None and held != data.kindergarten:
                    raise RosterError(
                        f"roster is for kindergarten {data.kindergarten!r}, this gate's is {held!r}"
                    )
                if data.version == installed:
                    if meta.get("digest") != data.digest:
                        raise RosterError(f"roster version {installed} is installed with other content")
                    old = meta.get("expires")
                    if expires is not None and (old is None or dt.datetime.fromisoformat(old) < expires):
                        _set_meta(conn, [("expires", expires.isoformat())])
                    return False
            for table in ("guardian_badges", "guardian_children", "guardians", "badges", "children"):
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            conn.executemany(
                "INSERT INTO children (id, name, grp, consent_face, language) VALUES (?, ?, ?, ?, ?)",
                map(_child_record, data.children),
            )
            conn.executemany("INSERT INTO badges VALUES (?, ?, ?)", data.badges)
            conn.executemany("INSERT INTO guardians VALUES (?, ?)", [(g.id, g.name) for g in data.guardians])
            conn.executemany(
                "INSERT INTO guardian_children VALUES (?, ?)",
                [(g.id, kid) for g in data.guardians for kid in sorted(g.children)],
            )
            conn.executemany("INSERT INTO guardian_badges VALUES (?, ?, ?)", data.guardian_badges)
            rows = [("version", str(data.version)), ("digest", data.digest)]
            if data.kindergarten is not None:
                rows.append(("kindergarten", data.kindergarten))
            if expires is not None:
                rows.append(("expires", expires.isoformat()))
            else:
                conn.execute("DELETE FROM meta WHERE key = 'expires'")
            _set_meta(conn, rows)
        return True


def _set_meta(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", rows
    )


def _add_language_column(conn: sqlite3.Connection) -> None:
    """A roster.db from before family languages gets the column (its children: NULL, the gate's)."""
    if "language" in {row[1] for row in conn.execute("PRAGMA table_info(children)")}:
        return
    try:
        conn.execute("ALTER TABLE children ADD COLUMN language TEXT")
    except sqlite3.OperationalError:  # another process (the sync agent) added it just now
        if "language" not in {row[1] for row in conn.execute("PRAGMA table_info(children)")}:
            raise


def open_roster(db_path: Path | str) -> Roster:
    """Open (creating if needed) the roster database at ``db_path`` (a StorageError names the file)."""
    path = Path(db_path)
    conn = open_durable(path, what=WHAT)
    try:
        conn.executescript(_SCHEMA)
        _add_language_column(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise storage_error(exc, path, WHAT) from None
    return Roster(conn, path)


def load_roster(db_path: Path | str, json_path: Path | str, *, face_key: Path | None = None) -> Roster:
    """Validate the roster file at ``json_path`` and install it into ``db_path`` (with face template
    retention, ``face_key`` as in :meth:`Roster.install`); returns the open roster."""
    try:
        raw = read_limited(json_path, MAX_ROSTER_BYTES, "roster file")
    except InputError as exc:
        raise RosterError(str(exc)) from None
    data = parse_roster(raw)
    roster = open_roster(db_path)
    try:
        roster.install(data, face_key=face_key)
    except BaseException:
        roster.close()
        raise
    return roster

"""Rosters at the register: each kindergarten's children, guardians, pickup rights and badges, and every
published version's canonical document (docs/rosters.md). Functions take a :class:`Store`; each change
is one transaction that ends in a new version (monotonic per kindergarten), or changes nothing.

The document the gate installs (compact JSON, sorted keys, UTF-8; stored per version, so it is
byte-for-byte the same whenever it is asked for again)::

    {"version": N, "kindergarten": "K",
     "children": [{"id", "name", "group", "consent_face"}],
     "guardians": [{"id", "name", "children": ["child-id", ...]}],
     "badges": [{"serial", "child": id, "revoked": bool} | {"serial", "guardian": id, "revoked": bool}]}
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from register.errors import ConfigError, RosterImportError, UnknownPerson
from register.roster_csv import Person
from register.store.base import Sql, Store
from terminal.badge import new_serial


@dataclass(frozen=True)
class RosterVersion:
    """One published version: its number, when, what changed, and the SHA-256 of its document."""

    kindergarten: str
    version: int
    created_ms: int
    change: str
    digest: str


def _check_kindergarten(kindergarten: str) -> None:
    if not kindergarten.strip() or len(kindergarten) > 200 or not kindergarten.isprintable():
        raise ConfigError("--kindergarten must be non-empty printable text of at most 200 characters")


def _latest(sql: Sql, kindergarten: str) -> tuple[int, bytes | None]:
    row = sql.one(
        "SELECT version, document FROM roster_versions WHERE kindergarten = ? ORDER BY version DESC LIMIT 1",
        (kindergarten,),
    )
    return (0, None) if row is None else (int(row[0]), bytes(row[1]))


def _active_badges(sql: Sql, kindergarten: str) -> dict[tuple[str, str], str]:
    rows = sql.all(
        "SELECT holder_kind, holder, serial FROM roster_badges WHERE kindergarten = ? AND NOT revoked",
        (kindergarten,),
    )
    return {(str(k), str(h)): str(s) for k, h, s in rows}


def _revoke(sql: Sql, serial: str, version: int) -> None:
    sql.run(
        "UPDATE roster_badges SET revoked = TRUE, revoked_version = ? WHERE serial = ?", (version, serial)
    )


def _issue(sql: Sql, kindergarten: str, kind: str, holder: str, *, serial: str, version: int) -> None:
    sql.run(
        "INSERT INTO roster_badges (serial, kindergarten, holder_kind, holder, issued_version) "
        "VALUES (?, ?, ?, ?, ?)",
        (serial, kindergarten, kind, holder, version),
    )


def _body(sql: Sql, kindergarten: str) -> dict[str, Any]:
    """The document's content (without its version) from the current tables."""
    children = [
        {"id": r[0], "name": r[1], "group": r[2], "consent_face": bool(r[3])}
        for r in sql.all(
            "SELECT id, name, grp, consent_face FROM roster_children WHERE kindergarten = ? ORDER BY id",
            (kindergarten,),
        )
    ]
    pickup: dict[str, list[str]] = {}
    for guardian, child in sql.all(
        "SELECT guardian, child FROM roster_pickup WHERE kindergarten = ? ORDER BY guardian, child",
        (kindergarten,),
    ):
        pickup.setdefault(str(guardian), []).append(str(child))
    guardians = [
        {"id": r[0], "name": r[1], "children": pickup.get(str(r[0]), [])}
        for r in sql.all(
            "SELECT id, name FROM roster_guardians WHERE kindergarten = ? ORDER BY id", (kindergarten,)
        )
    ]
    present = {("child", c["id"]) for c in children} | {("guardian", g["id"]) for g in guardians}
    badges = [
        {"serial": r[0], str(r[1]): r[2], "revoked": bool(r[3])}
        for r in sql.all(
            "SELECT serial, holder_kind, holder, revoked FROM roster_badges "
            "WHERE kindergarten = ? ORDER BY serial",
            (kindergarten,),
        )
        if (str(r[1]), str(r[2])) in present  # a removed person's badges leave the roster with them
    ]
    return {"kindergarten": kindergarten, "children": children, "guardians": guardians, "badges": badges}


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _publish(
    sql: Sql, kindergarten: str, version: int, previous: bytes | None, *, change: str, now_ms: int
) -> int:
    """Store version ``version`` if the content differs from ``previous``; the version now current."""
    body = _body(sql, kindergarten)
    if previous is not None:
        old = json.loads(previous)
        old.pop("version")
        if old == body:
            return version - 1
    doc = _encode({"version": version, **body})
    sql.run(
        "INSERT INTO roster_versions (kindergarten, version, created_ms, change, digest, document) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (kindergarten, version, now_ms, change, hashlib.sha256(doc).hexdigest(), doc),
    )
    return version


def import_roster(
    store: Store, kindergarten: str, people: Sequence[Person], *, now_ms: int | None = None
) -> int:
    """Replace the kindergarten's roster with ``people`` (a parsed CSV); returns the current version.

    Given badges are kept (a different one revokes the old); missing ones are kept or issued with
    :func:`terminal.badge.new_serial`. People not in the file leave the roster and their badges are
    revoked. Nothing changes (and no version is made) if the content is the same.
    """
    _check_kindergarten(kindergarten)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    with store._tx(write=True) as sql:
        current, previous = _latest(sql, kindergarten)
        version = current + 1
        active = _active_badges(sql, kindergarten)
        for p in people:
            if p.badge is not None and active.get((p.kind, p.id)) != p.badge:
                row = sql.one(
                    "SELECT kindergarten, holder_kind, holder FROM roster_badges WHERE serial = ?", (p.badge,)
                )
                if row is not None:
                    raise RosterImportError(
                        f"line {p.line}, column badge: serial {p.badge} was already issued "
                        f"(to {row[1]} {row[2]}); leave it empty to issue a new one"
                    )
        sql.run("DELETE FROM roster_pickup WHERE kindergarten = ?", (kindergarten,))
        sql.run("DELETE FROM roster_children WHERE kindergarten = ?", (kindergarten,))
        sql.run("DELETE FROM roster_guardians WHERE kindergarten = ?", (kindergarten,))
        keep = {(p.kind, p.id) for p in people}
        for holder, serial in active.items():
            if holder not in keep:
                _revoke(sql, serial, version)
        for p in people:
            if p.kind == "child":
                sql.run(
                    "INSERT INTO roster_children (kindergarten, id, name, grp, consent_face) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (kindergarten, p.id, p.name, p.group, p.consent_face),
                )
            else:
                sql.run(
                    "INSERT INTO roster_guardians (kindergarten, id, name) VALUES (?, ?, ?)",
                    (kindergarten, p.id, p.name),
                )
                for child in p.guardian_of:
                    sql.run(
                        "INSERT INTO roster_pickup (kindergarten, guardian, child) VALUES (?, ?, ?)",
                        (kindergarten, p.id, child),
                    )
            old = active.get((p.kind, p.id))
            if p.badge is not None and p.badge != old:
                if old is not None:
                    _revoke(sql, old, version)
                _issue(sql, kindergarten, p.kind, p.id, serial=p.badge, version=version)
            elif old is None:
                _issue(sql, kindergarten, p.kind, p.id, serial=new_serial(), version=version)
        return _publish(
            sql, kindergarten, version, previous, change=f"import of {len(people)} rows", now_ms=now
        )


def reissue_badge(
    store: Store, kindergarten: str, holder: str, *, kind: str = "child", now_ms: int | None = None
) -> tuple[str, int]:
    """A new serial for ``holder``, the old one revoked, in one new version; returns (serial, version)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    table = {"child": "roster_children", "guardian": "roster_guardians"}[kind]
    with store._tx(write=True) as sql:
        query = f"SELECT id FROM {table} WHERE kindergarten = ? AND id = ?"  # noqa: S608 - fixed names
        if sql.one(query, (kindergarten, holder)) is None:
            raise UnknownPerson(f"no {kind} {holder!r} in the roster of {kindergarten}")
        current, previous = _latest(sql, kindergarten)
        version = current + 1
        old = _active_badges(sql, kindergarten).get((kind, holder))
        if old is not None:
            _revoke(sql, old, version)
        serial = new_serial()
        _issue(sql, kindergarten, kind, holder, serial=serial, version=version)
        _publish(
            sql, kindergarten, version, previous, change=f"badge reissued for {kind} {holder}", now_ms=now
        )
    return serial, version


def roster_document(store: Store, kindergarten: str, version: int | None = None) -> bytes:
    """The canonical JSON of the kindergarten's newest roster (or of ``version``), exactly as published."""
    with store._tx(write=False) as sql:
        if version is None:
            _, doc = _latest(sql, kindergarten)
        else:
            row = sql.one(
                "SELECT document FROM roster_versions WHERE kindergarten = ? AND version = ?",
                (kindergarten, version),
            )
            doc = None if row is None else bytes(row[0])
    if doc is None:
        raise UnknownPerson(
            f"no roster{'' if version is None else f' version {version}'} for {kindergarten!r}"
        )
    return doc


def roster_versions(store: Store, kindergarten: str) -> list[RosterVersion]:
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT kindergarten, version, created_ms, change, digest FROM roster_versions "
            "WHERE kindergarten = ? ORDER BY version",
            (kindergarten,),
        )
    return [RosterVersion(r[0], int(r[1]), int(r[2]), r[3], r[4]) for r in rows]

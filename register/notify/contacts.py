"""Guardians' contacts and consent, kept only at the register (never in the roster document for gates).

CSV for ``kgate register contacts import --kindergarten K FILE`` (UTF-8, header on line 1, any order):
``guardian`` (a guardian id of K's roster, required), ``lang`` (kk|ru|en, required), ``opt_in``
(yes/no; empty = no), ``digest`` (yes/no; empty = no: one message a day instead of one per event),
and the channels the guardian chose, each optional: ``email``, ``telegram`` (a
chat id), ``sms_gateway`` (the name of an operator-run SMS webhook) with ``phone`` (E.164). The whole
file is validated before anything is written; an import replaces the kindergarten's contacts.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from register.csvfile import read_csv
from register.notify.errors import ContactsImportError
from register.roster_csv import _NO, _YES, MAX_BYTES, MAX_ROWS
from register.store.base import Store

COLUMNS: Final = ("guardian", "lang", "opt_in", "email", "telegram", "sms_gateway", "phone", "digest")
LANGS: Final = ("kk", "ru", "en")
DEFAULT_ZONE: Final = "Asia/Almaty"
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_CHAT = re.compile(r"-?[1-9][0-9]{0,19}")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_TARGET = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class Contact:
    """A channel a guardian chose: ``email``, ``telegram``, ``webhook`` (address: phone, target: gateway)."""

    channel: str
    address: str
    target: str | None = None


@dataclass(frozen=True)
class Guardian:
    """One CSV row: a guardian's language, consent and channels."""

    line: int
    guardian: str
    lang: str
    opt_in: bool
    contacts: tuple[Contact, ...]
    digest: bool = False  # one message a day (at DIGEST_HOUR local) instead of one per event


def parse_contacts(raw: bytes) -> list[Guardian]:
    """Every row of a contacts CSV, or :class:`ContactsImportError` naming the first bad line and column."""
    table = read_csv(
        raw,
        what="contacts CSV",
        known=COLUMNS,
        required=("guardian", "lang"),
        max_bytes=MAX_BYTES,
        max_rows=MAX_ROWS,
        error=ContactsImportError,
    )
    out: list[Guardian] = []
    seen: dict[str, int] = {}
    for line, cells in table.rows:
        g = _row(line, {col: cell.strip() for col, cell in cells.items()}, table.columns)
        if g.guardian in seen:
            raise ContactsImportError(
                f"line {line}: guardian {g.guardian!r} already on line {seen[g.guardian]}"
            )
        seen[g.guardian] = line
        out.append(g)
    if not out:
        raise ContactsImportError("line 2: no guardians in the file")
    return out


def _row(line: int, cells: dict[str, str], cols: list[str]) -> Guardian:
    def where(col: str) -> str:
        return f"line {line}, column {cols.index(col) + 1} ({col})"

    def get(col: str) -> str:
        return cells.get(col, "")

    guardian = get("guardian")
    if not guardian:
        raise ContactsImportError(f"{where('guardian')}: a guardian id is required")
    lang = get("lang").lower()
    if lang not in LANGS:
        raise ContactsImportError(f"{where('lang')}: must be one of {', '.join(LANGS)}")
    opt = get("opt_in").lower()
    if opt not in _YES | _NO:
        raise ContactsImportError(f"{where('opt_in')}: must be yes or no")
    contacts: list[Contact] = []
    if email := get("email"):
        if not _EMAIL.fullmatch(email) or "." not in email.rpartition("@")[2]:
            raise ContactsImportError(f"{where('email')}: {email!r} is not an email address")
        contacts.append(Contact("email", email))
    if chat := get("telegram"):
        if not _CHAT.fullmatch(chat):
            raise ContactsImportError(f"{where('telegram')}: a Telegram chat id is an integer, got {chat!r}")
        contacts.append(Contact("telegram", chat))
    target, phone = get("sms_gateway"), get("phone")
    if phone and not _PHONE.fullmatch(phone):
        raise ContactsImportError(f"{where('phone')}: a phone number in E.164 form, e.g. +77011234567")
    if target:
        if not _TARGET.fullmatch(target):
            raise ContactsImportError(f"{where('sms_gateway')}: a gateway name is 1-32 of a-z 0-9 -")
        if not phone:
            raise ContactsImportError(f"line {line}: sms_gateway {target!r} needs a phone number")
        contacts.append(Contact("webhook", phone, target))
    elif phone:
        raise ContactsImportError(f"line {line}: phone given without the sms_gateway that sends to it")
    if opt in _YES and not contacts:
        raise ContactsImportError(f"line {line}: opt_in is yes but no channel (email, telegram, sms_gateway)")
    digest = get("digest").lower()
    if digest not in _YES | _NO:
        raise ContactsImportError(f"{where('digest')}: must be yes or no")
    return Guardian(line, guardian, lang, opt in _YES, tuple(contacts), digest in _YES)


def check_zone(zone: str) -> str:
    """An IANA time zone name, or :class:`ContactsImportError`."""
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ContactsImportError(f"--zone {zone!r} is not an IANA time zone (e.g. Asia/Almaty)") from None
    return zone


def check_name(name: str) -> str:
    """A kindergarten's display name for messages: 1-120 printable characters, or the error."""
    name = name.strip()
    if not name or len(name) > 120 or not name.isprintable():
        raise ContactsImportError("--name must be 1-120 printable characters")
    return name


def import_contacts(
    store: Store,
    kindergarten: str,
    guardians: Sequence[Guardian],
    *,
    zone: str | None = None,
    name: str | None = None,
) -> int:
    """Replace the kindergarten's contacts in one transaction; every guardian must be in its roster.

    Returns the number of guardians who opted in. ``zone`` (the kindergarten's time zone) and ``name``
    (what messages call the kindergarten; its id when never given) are kept when None. Unsubscriptions
    (register/notify/unsubscribe.py) are kept: an import does not subscribe an address again.
    """
    if name is not None:
        name = check_name(name)
    with store._tx(write=True) as sql:
        known = {
            str(r[0])
            for r in sql.all("SELECT id FROM roster_guardians WHERE kindergarten = ?", (kindergarten,))
        }
        for g in guardians:
            if g.guardian not in known:
                raise ContactsImportError(
                    f"line {g.line}, column guardian: no guardian {g.guardian!r} "
                    f"in the roster of {kindergarten}"
                )
        sql.run("DELETE FROM notify_contacts WHERE kindergarten = ?", (kindergarten,))
        sql.run("DELETE FROM notify_guardians WHERE kindergarten = ?", (kindergarten,))
        sql.many(
            "INSERT INTO notify_guardians (kindergarten, guardian, lang, opt_in, digest) "
            "VALUES (?, ?, ?, ?, ?)",
            [(kindergarten, g.guardian, g.lang, g.opt_in, g.digest) for g in guardians],
        )
        sql.many(
            "INSERT INTO notify_contacts (kindergarten, guardian, channel, address, target) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (kindergarten, g.guardian, c.channel, c.address, c.target)
                for g in guardians
                for c in g.contacts
            ],
        )
        if zone is not None:
            sql.run(
                "INSERT INTO notify_zones (kindergarten, zone) VALUES (?, ?) "
                "ON CONFLICT (kindergarten) DO UPDATE SET zone = excluded.zone",
                (kindergarten, check_zone(zone)),
            )
        if name is not None:
            sql.run(
                "INSERT INTO notify_zones (kindergarten, zone, name) VALUES (?, ?, ?) "
                "ON CONFLICT (kindergarten) DO UPDATE SET name = excluded.name",
                (kindergarten, DEFAULT_ZONE, name),
            )
    return sum(g.opt_in for g in guardians)


def list_contacts(store: Store, kindergarten: str) -> list[dict[str, object]]:
    """Each guardian's language, consent and channels (for ``kgate register contacts show``)."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT guardian, lang, opt_in, digest FROM notify_guardians WHERE kindergarten = ? "
            "ORDER BY guardian",
            (kindergarten,),
        )
        chans = sql.all(
            "SELECT guardian, channel, address, target FROM notify_contacts WHERE kindergarten = ? "
            "ORDER BY guardian, channel",
            (kindergarten,),
        )
    by: dict[str, list[dict[str, object]]] = {}
    for guardian, channel, address, target in chans:
        item: dict[str, object] = {"channel": channel, "address": address}
        if target is not None:
            item["target"] = target
        by.setdefault(str(guardian), []).append(item)
    return [
        {"guardian": g, "lang": lang, "opt_in": bool(opt), "digest": bool(dg), "channels": by.get(str(g), [])}
        for g, lang, opt, dg in rows
    ]

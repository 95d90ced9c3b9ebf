"""The transactional outbox: notifications written in the transaction that stores the entries.

:func:`enqueue` runs inside :meth:`register.service.Register.ingest`'s device transaction, right after
the new entries are inserted: for each ``in``/``out`` entry of a child, one row per (guardian, channel)
of that child's guardians who opted in. The row is unique on (device, index, guardian, channel) and
inserted with ``ON CONFLICT DO NOTHING``, so a re-pushed or pulled entry never notifies twice, and a
rolled-back ingest leaves no notification behind. The row carries everything the message needs
(``payload``), so retries send the same words even if the roster changes meanwhile.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from collections.abc import Sequence
from typing import Any, Final

from ledger.entry import Entry, decode_entry
from ledger.errors import EntryError
from register.notify.contacts import DEFAULT_ZONE
from register.store.base import Device, Sql

DIGEST_HOUR: Final = 19  # local hour at which a digest guardian's day is sent
LATE_AFTER_MS: Final = 10 * 60_000  # an entry stored this much after its gate time is delivered "late"
PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
CANCELLED: Final = "cancelled"  # pending when its address unsubscribed (register/notify/unsubscribe.py)


def notification_key(origin: str, index: int, guardian: str) -> str:
    """The deterministic id of one entry's message to one guardian (Message-ID, Idempotency-Key)."""
    return hashlib.sha256(f"kgate-notify\n{origin}\n{index}\n{guardian}".encode()).hexdigest()[:32]


def first_name(name: str) -> str:
    parts = name.split(maxsplit=1)
    return parts[0] if parts else name


def _pickup(entry: Entry, allowed: set[str], adults: dict[Any, Any]) -> tuple[str | None, bool]:
    """Who picked the child up, as the register knows it: ``(roster name, False)`` when the ``out``
    entry's ``guardian`` evidence is the id of a guardian the child's roster lets pick it up;
    ``(None, True)`` for any other value (an unknown id, another family's guardian, free text: never
    shown); ``(None, False)`` when there is no such evidence (an ``in``, or a gate without the pickup
    policy)."""
    if entry.kind != "out" or "guardian" not in entry.evidence:
        return None, False
    picked = entry.evidence["guardian"]
    if isinstance(picked, str) and picked in allowed and picked in adults:
        return str(adults[picked]), False
    return None, True


def enqueue(
    sql: Sql,
    device: Device,
    entries: Sequence[tuple[int, bytes, bytes]],
    *,
    now_ms: int,
    decoded: Sequence[Entry] | None = None,
) -> int:
    """Write the notifications for newly stored ``entries`` ``(index, data, leaf)``; returns rows added.

    ``decoded``: the same entries already decoded (the ingest's check decoded them), in the same order;
    without it the ``in``/``out`` candidates are decoded here.
    """
    events = []
    if decoded is not None:
        if len(decoded) != len(entries):
            raise ValueError(f"{len(decoded)} decoded entries for {len(entries)} stored ones")
        events = [
            (idx, entry)
            for (idx, _data, _leaf), entry in zip(entries, decoded, strict=True)
            if entry.kind in ("in", "out") and entry.child is not None
        ]
    for idx, data, _leaf in entries if decoded is None else ():
        if b"\x62in" not in data and b"\x63out" not in data:
            continue  # cheap pre-filter on the CBOR text "in"/"out"; decoded below
        try:
            entry = decode_entry(bytes(data))
        except EntryError:
            continue  # verified bytes of an entry this kgate cannot parse: nothing to tell parents
        if entry.kind in ("in", "out") and entry.child is not None:
            events.append((idx, entry))
    if not events:
        return 0
    k = device.kindergarten
    children = sorted({e.child for _, e in events if e.child is not None})
    marks = ",".join("?" * len(children))
    subs: dict[str, list[tuple[str, str, str, str | None]]] = {}
    for child, guardian, channel, address, target in sql.all(
        "SELECT p.child, p.guardian, c.channel, c.address, c.target FROM roster_pickup p "  # noqa: S608
        "JOIN notify_guardians g ON g.kindergarten = p.kindergarten AND g.guardian = p.guardian "
        "JOIN notify_contacts c ON c.kindergarten = g.kindergarten AND c.guardian = g.guardian "
        f"WHERE p.kindergarten = ? AND g.opt_in AND p.child IN ({marks}) "
        "ORDER BY p.guardian, c.channel",
        (k, *children),
    ):
        subs.setdefault(str(child), []).append((str(guardian), str(channel), str(address), target))
    if not subs:
        return 0
    langs = dict(sql.all("SELECT guardian, lang FROM notify_guardians WHERE kindergarten = ?", (k,)))
    digests = {
        str(r[0])
        for r in sql.all("SELECT guardian FROM notify_guardians WHERE kindergarten = ? AND digest", (k,))
    }
    names = dict(sql.all("SELECT id, name FROM roster_children WHERE kindergarten = ?", (k,)))
    adults = dict(sql.all("SELECT id, name FROM roster_guardians WHERE kindergarten = ?", (k,)))
    allowed: dict[str, set[str]] = {}  # child -> the guardians its roster lets pick it up
    for child, guardian in sql.all(
        f"SELECT child, guardian FROM roster_pickup WHERE kindergarten = ? AND child IN ({marks})",  # noqa: S608
        (k, *children),
    ):
        allowed.setdefault(str(child), set()).add(str(guardian))
    zone_row = sql.one("SELECT zone, name FROM notify_zones WHERE kindergarten = ?", (k,))
    zone = DEFAULT_ZONE if zone_row is None else str(zone_row[0])
    k_name = k if zone_row is None or zone_row[1] is None else str(zone_row[1])
    gone = {
        (str(g), str(c), str(a))
        for g, c, a in sql.all(
            "SELECT guardian, channel, address FROM notify_unsubscribed WHERE kindergarten = ?", (k,)
        )
    }
    rows: list[tuple[Any, ...]] = []
    for idx, entry in events:
        assert entry.child is not None
        name = names.get(entry.child)
        if name is None:
            continue  # not on the roster: nothing the register knows to tell (subs come from the roster)
        pickup_name, pickup_unknown = _pickup(entry, allowed.get(entry.child, set()), adults)
        for guardian, channel, address, target in subs.get(entry.child, []):
            if (guardian, channel, address) in gone:
                continue  # unsubscribed with the one-click link (register/notify/unsubscribe.py)
            due, digest = now_ms, None
            if guardian in digests:  # due at DIGEST_HOUR of the entry's local day (or now, if later)
                local = dt.datetime.fromtimestamp(entry.time_ms / 1000, zoneinfo.ZoneInfo(zone))
                digest = local.date().isoformat()
                due = max(
                    now_ms,
                    int(
                        local.replace(hour=DIGEST_HOUR, minute=0, second=0, microsecond=0).timestamp() * 1000
                    ),
                )
            payload = {
                "kind": entry.kind,
                "child": entry.child,
                "child_name": first_name(str(name)),
                "time_ms": entry.time_ms,
                "late": now_ms - entry.time_ms > LATE_AFTER_MS,
                "kindergarten": k,
                "kindergarten_name": k_name,
                "gate": device.gate,
                "zone": zone,
                "lang": langs.get(guardian, "ru"),
                "pickup_name": pickup_name,
                "pickup_unknown": pickup_unknown,
            }
            if digest is not None:
                payload["digest"] = digest
            rows.append((
                device.id, idx, guardian, channel, address, target,
                notification_key(device.origin, idx, guardian),
                json.dumps(payload, ensure_ascii=False, sort_keys=True), now_ms, PENDING, due,
            ))  # fmt: skip
    sql.many(
        "INSERT INTO notify_outbox (device_id, idx, guardian, channel, address, target, key, payload, "
        "created_ms, state, due_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (device_id, idx, guardian, channel) DO NOTHING",
        rows,
    )
    return len(rows)

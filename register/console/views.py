"""What the console's pages show, read from the store: plain data for the templates (docs/console.md).

Every function takes the user's visible kindergartens (None: all, for an auditor) or is called only
after the route checked the scope; the табель numbers come from :mod:`register.tabel.status` and
:mod:`register.tabel.export`, the same functions ``kgate register tabel`` uses.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import threading
from dataclasses import dataclass
from typing import Any, Final

from ledger.entry import decode_entry
from ledger.errors import LedgerError
from ledger.merkle import inclusion_proof
from register.errors import StoreError
from register.notify.report import PARENT_ALARMS
from register.statement import _Reader
from register.store.base import Device, Store
from register.tabel import approval, status
from register.tabel.calendar import REASONS, absences, get_settings
from register.tabel.export import _mark, csv_bytes, to_csv
from register.tabel.form import alphabet_key, surname_first

PAGE: Final = 100  # overview rows per page
LOG_PAGE: Final = 50  # device-log entries per page
ALARMS_PAGE: Final = 50


def when(ms: int | None) -> str:
    """A UTC time for the tables (``—`` when never)."""
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def silent_for(now_ms: int, last_ms: int | None) -> str:
    """How long a device has been silent, coarsely (``3d 4h``, ``12m``)."""
    if last_ms is None:
        return "∞"
    s = max(0, (now_ms - last_ms) // 1000)
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    return f"{d}d {h}h" if d else (f"{h}h {m}m" if h else f"{m}m")


def _scope_sql(visible: set[str] | None, column: str) -> tuple[str, list[Any]]:
    if visible is None:
        return "", []
    if not visible:
        return " WHERE 1 = 0", []
    return f" WHERE {column} IN ({', '.join('?' * len(visible))})", sorted(visible)


def overview(store: Store, visible: set[str] | None, *, page: int, apage: int, now_ms: int) -> dict[str, Any]:
    """One page of devices (with their heartbeat's numbers) and one page of alarms, within scope."""
    where, params = _scope_sql(visible, "d.kindergarten")
    with store._tx(write=False) as sql:
        total = int(sql.one(f"SELECT count(*) FROM devices d{where}", params)[0])  # noqa: S608
        cols = "d.id, d.origin, d.kindergarten, d.gate, d.last_seen_ms, d.heartbeat, d.size, d.disabled"
        # the page first, then the last push of its 100 devices only
        inner = f"SELECT {cols} FROM devices d{where} ORDER BY d.kindergarten, d.gate, d.id LIMIT ? OFFSET ?"  # noqa: S608
        last_push = "(SELECT max(c.received_ms) FROM checkpoints c WHERE c.device_id = d.id)"
        query = f"SELECT d.*, {last_push} FROM ({inner}) d ORDER BY d.kindergarten, d.gate, d.id"  # noqa: S608
        rows = sql.all(query, [*params, PAGE, page * PAGE])
        alarm_where = where.replace("WHERE", "WHERE d.kindergarten IS NOT NULL AND") if where else ""
        if visible is not None:  # parents' reports are the auditors': no director learns which family
            alarm_where += f" AND a.kind NOT IN ({', '.join('?' * len(PARENT_ALARMS))})"
            params = [*params, *PARENT_ALARMS]
        cols = "a.id, a.time_ms, a.kind, a.detail, d.id, d.origin, d.kindergarten"
        query = f"SELECT {cols} FROM alarms a LEFT JOIN devices d ON d.id = a.device_id{alarm_where}"  # noqa: S608
        alarm_rows = sql.all(
            query + " ORDER BY a.id DESC LIMIT ? OFFSET ?", [*params, ALARMS_PAGE + 1, apage * ALARMS_PAGE]
        )
    devices = []
    for r in rows:
        hb: dict[str, Any] = json.loads(r[5]) if r[5] else {}
        free = hb.get("free_disk_bytes")
        devices.append({
            "id": int(r[0]), "origin": r[1], "kindergarten": r[2], "gate": r[3],
            "last_push": when(None if r[8] is None else int(r[8])),
            "last_heartbeat": when(hb.get("time_ms") if isinstance(hb.get("time_ms"), int) else None),
            "pending": hb.get("pending", "—"),
            "free_disk": "—" if not isinstance(free, int) else f"{free / 1e9:.1f} GB",
            "clock_synced": {True: "✓", False: "✗"}.get(hb.get("clock_synced"), "—"),  # type: ignore[arg-type]
            "roster_version": hb.get("roster_version", "—"),
            "silent_for": silent_for(now_ms, None if r[4] is None else int(r[4])),
            "silent_long": r[4] is None or now_ms - int(r[4]) > 86_400_000,
            "size": int(r[6]), "disabled": bool(r[7]),
        })  # fmt: skip
    alarms = [
        {"id": int(a[0]), "time": when(int(a[1])), "kind": a[2], "detail": a[3][:300],
         "device": None if a[4] is None else int(a[4]), "origin": a[5] or "", "kindergarten": a[6] or ""}
        for a in alarm_rows[:ALARMS_PAGE]
    ]  # fmt: skip
    return {
        "devices": devices,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE)),
        "alarms": alarms,
        "apage": apage,
        "more_alarms": len(alarm_rows) > ALARMS_PAGE,
    }


def _entry_ref(e: Any, zone: Any) -> dict[str, Any]:
    return {
        "device": e.device,
        "origin": e.origin,
        "index": e.index,
        "kind": e.kind,
        "time": e.local(zone).strftime("%H:%M"),
        "method": e.method or "",
    }


def day(store: Store, kindergarten: str, date: dt.date) -> dict[str, Any]:
    """Who is in, who left, who is absent on ``date``, each with the entries behind it."""
    month = date.strftime("%Y-%m")
    ctx = status.context(store, kindergarten, month)
    present = ctx.present()
    reasons = absences(store, kindergarten, [date])
    zone = ctx.zone
    inside, left, absent = [], [], []
    for kid in sorted(ctx.roster.on(date).values(), key=lambda c: (c.group, c.id)):
        evs = present.get((kid.id, date), [])
        row = {
            "id": kid.id,
            "name": kid.name,
            "group": kid.group,
            "entries": [_entry_ref(e, zone) for e in evs],
            "reason": REASONS.get(reasons.get((kid.id, date), ""), ""),
        }
        if not any(e.kind == "in" for e in evs):
            absent.append(row)
        elif evs[-1].kind == "out":
            left.append(row)
        else:
            inside.append(row)
    return {
        "date": date.isoformat(),
        "inside": inside,
        "left": left,
        "absent": absent,
        "kind": ctx.kinds[date],
    }


@dataclass(frozen=True)
class TabelPage:
    """The paper табель: per child its marks per day and totals; per day the number present."""

    days: list[dt.date]
    children: list[dict[str, Any]]
    per_day: list[int]
    present: int
    payable: int
    amount_tiyn: int
    rate_tiyn: int
    approved: bool
    steps: list[approval.Step]
    reasons: dict[str, str]


def _frozen_rows(doc: bytes) -> list[status.Row]:
    """The rows of an approved month's frozen CSV (what ``kgate register tabel`` prints for it)."""
    out = []
    for r in csv.DictReader(io.StringIO(doc.decode("utf-8"))):
        out.append(status.Row(
            r["kindergarten"], r["group"], r["child"], r["name"], dt.date.fromisoformat(r["date"]),
            r["status"], r["first_in"], r["last_out"], r["method"], r["absence_reason"], r["flags"],
            int(r["payable"]),
        ))  # fmt: skip
    return out


def tabel(store: Store, kindergarten: str, month: str) -> TabelPage:
    """The month as ``kgate register tabel`` gives it: the frozen CSV once approved, else the current one."""
    t = status.build(store, kindergarten, month)
    doc = approval.frozen(store, kindergarten, month)
    if doc is not None:
        approval.check(store, kindergarten, month, to_csv(t), now_ms=_now_ms())
        rows = _frozen_rows(doc)
    else:
        rows = t.rows
    days = sorted({r.date for r in rows})
    by_child: dict[tuple[str, str], list[status.Row]] = {}
    for r in rows:
        by_child.setdefault((r.group, r.child), []).append(r)
    children = []

    def order(item: tuple[tuple[str, str], list[status.Row]]) -> tuple[Any, ...]:
        (group, child), rs = item  # groups, then children by surname, in the Kazakh alphabet (docs/tabel.md)
        return alphabet_key(group), group, alphabet_key(surname_first(rs[0].name)), child

    for (group, child), rs in sorted(by_child.items(), key=order):
        cells = {r.date: r for r in rs}
        children.append({
            "id": child, "name": surname_first(rs[0].name), "group": group,
            "cells": [(cells[d].status, _mark(cells[d])) if d in cells else ("", "") for d in days],
            "present": sum(r.status == "present" for r in rs),
            "payable": sum(r.payable for r in rs),
        })  # fmt: skip
    per_day = [0] * len(days)
    at = {d: i for i, d in enumerate(days)}
    for r in rows:
        per_day[at[r.date]] += r.status == "present"
    payable = sum(r.payable for r in rows)
    return TabelPage(
        days, children, per_day, sum(r.status == "present" for r in rows), payable, payable * t.rate_tiyn,
        t.rate_tiyn, doc is not None, approval.steps(store, kindergarten, month), REASONS,
    )  # fmt: skip


class TabelCache:
    """Built табель pages, reused while nothing they are computed from has changed (bounded, LRU).

    The fingerprint covers every input of :func:`register.tabel.status.build`: all devices' sizes (new
    entries anywhere, since ``two_places`` reads other kindergartens' check-ins), absences, clearances,
    approvals, roster versions, and the kindergarten's calendar and settings. Building a 300-child month
    takes about half a second; checking the fingerprint a few milliseconds.
    """

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._pages: dict[tuple[str, str], tuple[tuple[Any, ...], TabelPage]] = {}
        self._lock = threading.Lock()

    def get(self, store: Store, kindergarten: str, month: str) -> TabelPage:
        key = (kindergarten, month)
        mark = _fingerprint(store, kindergarten)
        with self._lock:
            hit = self._pages.pop(key, None)
            if hit is not None and hit[0] == mark:
                self._pages[key] = hit  # most recently used last
                return hit[1]
        page = tabel(store, kindergarten, month)
        mark = _fingerprint(store, kindergarten)  # tabel() may have recorded an alarm: not an input
        with self._lock:
            self._pages[key] = (mark, page)
            while len(self._pages) > self._size:
                self._pages.pop(next(iter(self._pages)))
        return page


def _fingerprint(store: Store, kindergarten: str) -> tuple[Any, ...]:
    with store._tx(write=False) as sql:
        counts = sql.one(
            "SELECT (SELECT count(*) FROM devices), (SELECT coalesce(sum(size), 0) FROM devices), "
            "(SELECT coalesce(max(id), 0) FROM tabel_absences), (SELECT count(*) FROM tabel_clearances), "
            "(SELECT coalesce(max(id), 0) FROM tabel_approvals), (SELECT count(*) FROM roster_versions)"
        )
        days = sql.all(
            "SELECT day, kind FROM tabel_days WHERE kindergarten = ? ORDER BY day", (kindergarten,)
        )
        settings = sql.one(
            "SELECT tz, opens, closes, rate_tiyn FROM tabel_settings WHERE kindergarten = ?", (kindergarten,)
        )
    return (
        tuple(int(c) for c in counts),
        tuple((str(d), str(k)) for d, k in days),
        None if settings is None else tuple(str(v) for v in settings),
    )


def _now_ms() -> int:
    import time  # noqa: PLC0415

    return int(time.time() * 1000)


# Flags whose source must not reach the kindergarten (docs/notifications.md, "Who sees reports"): a
# director or district official sees such a hold only as ``held_for_audit``, with the child-day (the
# табель shows it unpaid anyway) but not which rule, which entries, or what evidence; auditors see all.
AUDITORS_ONLY_RULES = frozenset({"parent_report"})
HELD_FOR_AUDIT = "held_for_audit"


def flags_for(role: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``found`` (from :func:`flags`) as ``role`` may see it: auditor-only holds masked, cleared ones
    dropped (a clearance's reason could name the family) for everyone but auditors."""
    if role == "auditor":
        return found
    out = []
    for f in found:
        if f["rule"] not in AUDITORS_ONLY_RULES:
            out.append(f)
        elif not f["cleared"]:
            out.append({**f, "id": "", "rule": HELD_FOR_AUDIT, "origin": None, "device": None,
                        "entries": [], "evidence": ""})  # fmt: skip
    return out


def mask_csv_for(role: str, doc: bytes) -> bytes:
    """The табель CSV as ``role`` may download it: auditor-only rules in the ``flags`` cell replaced by
    ``held_for_audit``."""
    if role == "auditor":
        return doc
    text = doc.decode("utf-8")
    if not any(rule in text for rule in AUDITORS_ONLY_RULES):
        return doc
    rows = list(csv.reader(io.StringIO(text, newline="")))
    column = rows[0].index("flags") if rows and "flags" in rows[0] else None
    if column is None:
        return doc
    for row in rows[1:]:
        if column < len(row) and row[column]:
            ids = row[column].split(";")
            masked = [HELD_FOR_AUDIT if i.split(":", 1)[0] in AUDITORS_ONLY_RULES else i for i in ids]
            row[column] = ";".join(dict.fromkeys(masked))
    return csv_bytes(rows)


def flags(store: Store, kindergarten: str, month: str) -> list[dict[str, Any]]:
    """The month's flags with their evidence, the devices their entries are in, and clearances."""
    found = status.flags(store, status.context(store, kindergarten, month))
    devices = {d.origin: d.id for d in store.devices()}
    out = []
    for f in found:
        numbers = {k: v for k, v in f.evidence.items() if k not in ("entries", "device")}
        out.append({
            "id": f.id, "rule": f.rule, "holding": f.holding, "origin": f.device,
            "device": devices.get(f.device or ""), "entries": f.entries,
            "child_days": [f"{c} {d.isoformat()}" for c, d in sorted(f.days)],
            "evidence": json.dumps(numbers, ensure_ascii=False, sort_keys=True)[:600],
            "cleared": f.cleared,
        })  # fmt: skip
    return out


def device(store: Store, device_id: int) -> Device | None:
    return next((d for d in store.devices() if d.id == device_id), None)


def device_log(store: Store, dev: Device, page: int) -> dict[str, Any]:
    """One page of a device's entries, decoded, in index order."""
    lo = page * LOG_PAGE
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT idx, data FROM entries WHERE device_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (dev.id, lo, lo + LOG_PAGE),
        )
    entries = []
    for idx, data in rows:
        try:
            e = decode_entry(bytes(data))
            entries.append({
                "index": int(idx), "kind": e.kind, "child": e.child or "", "time": when(e.time_ms),
                "method": e.method or "", "synced": e.clock_synced,
            })  # fmt: skip
        except LedgerError:
            entries.append(
                {"index": int(idx), "kind": "(undecodable)", "child": "", "time": "", "method": ""}
            )
    cp = store.newest_checkpoint(dev.id)
    return {
        "entries": entries,
        "page": page,
        "pages": max(1, -(-dev.size // LOG_PAGE)),
        "checkpoint": cp.cosigned if cp else "",
    }


def proof(store: Store, dev: Device, index: int) -> bytes | None:
    """One entry with its RFC 9162 inclusion proof against the newest cosigned checkpoint, as JSON."""
    cp = store.newest_checkpoint(dev.id)
    if cp is None or not 0 <= index < cp.size:
        return None
    with store._tx(write=False) as sql:
        row = sql.one("SELECT data FROM entries WHERE device_id = ? AND idx = ?", (dev.id, index))
    if row is None:
        return None
    try:
        path = inclusion_proof(index, cp.size, _Reader(store, dev))
    except KeyError as exc:
        raise StoreError(f"cannot prove entry {index}: {exc.args[0]}") from None
    doc = {
        "origin": dev.origin,
        "device_vkey": dev.vkey,
        "index": index,
        "data": base64.b64encode(bytes(row[0])).decode(),
        "proof": [base64.b64encode(h).decode() for h in path],
        "checkpoint": cp.cosigned,
    }
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()


def zone_of(store: Store, kindergarten: str) -> Any:
    return get_settings(store, kindergarten).zone

"""Approval of a month's табель, flag clearances, and the alarm when an approved month would change.

The director submits a month (the CSV's SHA-256 is recorded), the district approves it (the CSV is
frozen with its hash). Later, if the entries would give a different CSV, the frozen one stands and an
alarm ``tabel_changed`` is recorded once per new digest (evidence: the CSV it would now be).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from register.store.base import Store
from register.tabel import status
from register.tabel.errors import NotFound, TabelError
from register.tabel.export import text_csv, to_csv, to_xlsx

ALARM: str = "tabel_changed"


@dataclass(frozen=True)
class Step:
    step: str
    by: str
    time_ms: int
    digest: str


def _check_who(by: str) -> None:
    if not by.strip() or len(by) > 200 or not by.isprintable():
        raise TabelError("--by must be non-empty printable text of at most 200 characters")


def steps(store: Store, kindergarten: str, month: str) -> list[Step]:
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT step, done_by, time_ms, digest FROM tabel_approvals "
            "WHERE kindergarten = ? AND month = ? ORDER BY id",
            (kindergarten, month),
        )
    return [Step(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def frozen(store: Store, kindergarten: str, month: str) -> bytes | None:
    """The approved CSV of the month, or None if it is not approved."""
    with store._tx(write=False) as sql:
        row = sql.one(
            "SELECT document FROM tabel_approvals WHERE kindergarten = ? AND month = ? AND step = 'approved' "
            "ORDER BY id DESC LIMIT 1",
            (kindergarten, month),
        )
    return None if row is None else bytes(row[0])


def _record(
    store: Store, kindergarten: str, month: str, step: str, *, by: str, now_ms: int, doc: bytes
) -> str:
    digest = hashlib.sha256(doc).hexdigest()
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO tabel_approvals (kindergarten, month, step, done_by, time_ms, digest, document) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kindergarten, month, step, by, now_ms, digest, doc),
        )
    return digest


def submit(store: Store, kindergarten: str, month: str, *, by: str, now_ms: int) -> str:
    """The director submits the month as it is now; returns the CSV's SHA-256."""
    _check_who(by)
    if frozen(store, kindergarten, month) is not None:
        raise TabelError(f"{kindergarten} {month} is already approved")
    doc = to_csv(status.build(store, kindergarten, month))
    return _record(store, kindergarten, month, "submitted", by=by, now_ms=now_ms, doc=doc)


def approve(store: Store, kindergarten: str, month: str, *, by: str, now_ms: int) -> str:
    """The district approves the submitted month; refused if it changed since it was submitted."""
    _check_who(by)
    done = steps(store, kindergarten, month)
    if any(s.step == "approved" for s in done):
        raise TabelError(f"{kindergarten} {month} is already approved")
    submitted = [s for s in done if s.step == "submitted"]
    if not submitted:
        raise NotFound(f"{kindergarten} {month} was not submitted")
    doc = to_csv(status.build(store, kindergarten, month))
    if hashlib.sha256(doc).hexdigest() != submitted[-1].digest:
        raise TabelError(f"{kindergarten} {month} changed since it was submitted: the director submits again")
    return _record(store, kindergarten, month, "approved", by=by, now_ms=now_ms, doc=doc)


def check(store: Store, kindergarten: str, month: str, current: bytes, *, now_ms: int) -> str | None:
    """If the month is approved and ``current`` differs, record the alarm (once) and say so."""
    doc = frozen(store, kindergarten, month)
    if doc is None or doc == current:
        return None
    digest = hashlib.sha256(current).hexdigest()
    detail = (
        f"approved табель {kindergarten} {month} (sha256 {hashlib.sha256(doc).hexdigest()}) would now be "
        f"{digest}: entries arrived or changed after approval"
    )
    if not any(a.kind == ALARM and a.detail == detail for a in store.alarms()):
        store.add_alarm(None, ALARM, detail, index=None, evidence=current, now_ms=now_ms)
    return detail


def document(
    store: Store, kindergarten: str, month: str, fmt: str, *, now_ms: int
) -> tuple[bytes, str | None]:
    """What ``kgate register tabel --format fmt`` writes (and the console downloads), with the alarm if any.

    CSV: the approved document once the month is approved (it stays as approved), else the current one;
    XLSX: the current month in the paper layout. Refused when the kindergarten has no roster and no entries.
    Neither holds a formula: the approved CSV goes out through :func:`text_csv` too (the same bytes for
    one approved since cells are made safe; a stored one that would hold a formula comes out without).
    """
    tabel = status.build(store, kindergarten, month)
    if not tabel.rows:
        raise NotFound(f"no roster and no entries for {kindergarten!r}")
    csv_now = to_csv(tabel)
    changed = check(store, kindergarten, month, csv_now, now_ms=now_ms)
    if fmt == "xlsx":
        return to_xlsx(tabel), changed
    approved = frozen(store, kindergarten, month)
    return (csv_now if approved is None else text_csv(approved)), changed


def clear_flag(store: Store, flag: str, *, by: str, reason: str, now_ms: int) -> None:
    """An auditor clears a flag (recorded with who, when and why; a flag is cleared once)."""
    clear_flags(store, [flag], by=by, reason=reason, now_ms=now_ms)


MAX_CLEAR: int = 100_000


def clear_flags(store: Store, flags: list[str], *, by: str, reason: str, now_ms: int) -> list[str]:
    """An auditor clears several flags with one reason, one record per flag (who, when, why), in one
    transaction: if any of them is already cleared, none is. Returns the ids cleared, sorted."""
    _check_who(by)
    if not reason.strip() or len(reason) > 500:
        raise TabelError("--reason must be non-empty text of at most 500 characters")
    ids = sorted(set(flags))
    if len(ids) > MAX_CLEAR:
        raise TabelError(f"at most {MAX_CLEAR} flags at once ({len(ids)} given)")
    for flag in ids:
        if not flag.strip() or len(flag) > 500 or not flag.isprintable():
            raise TabelError(f"flag id {flag[:60]!r}: expected an id from flags list")
    with store._tx(write=True) as sql:
        for flag in ids:
            if sql.one("SELECT flag FROM tabel_clearances WHERE flag = ?", (flag,)) is not None:
                raise TabelError(f"flag {flag} is already cleared")
            sql.run(
                "INSERT INTO tabel_clearances (flag, cleared_by, reason, time_ms) VALUES (?, ?, ?, ?)",
                (flag, by, reason, now_ms),
            )
    return ids

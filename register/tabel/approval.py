"""Approval of a month's табель, its guard rails and reopening, flag clearances, and the alarm when an
approved month would change.

The director submits a month (the CSV's SHA-256 is recorded), the district approves it (the CSV is
frozen with its hash). Approving a month that still has open payment-holding flags or absences without
a reason needs an explicit reason, recorded with the approval. The district can reopen an approved month
with a reason; it is then submitted and approved again (every step stays in ``tabel_approvals``). Later,
if the entries would give a different CSV, the frozen one stands and an alarm ``tabel_changed`` is
recorded once per new digest, naming what changed since the approval (entries, a flag cleared, an
absence reason, the calendar or roster) and whether the payable amount changes (evidence: the CSV it
would now be).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field

from register.store.base import Store
from register.tabel import status
from register.tabel.errors import NotFound, TabelError
from register.tabel.export import text_csv, to_csv, to_xlsx

ALARM: str = "tabel_changed"
MAX_REASON: int = 500


@dataclass(frozen=True)
class Step:
    step: str  # submitted, approved or reopened
    by: str
    time_ms: int
    digest: str
    reason: str = ""  # why (a reopening; an approval despite open flags or absences without a reason)


@dataclass(frozen=True)
class Concerns:
    """What should stop a district from approving a month without saying why."""

    holding_flags: list[str] = field(default_factory=list)  # uncleared flags of holding rules, by id
    rules: list[str] = field(default_factory=list)  # their rules, sorted
    unexplained: int = 0  # absent child-days with no reason entered

    def __bool__(self) -> bool:
        return bool(self.holding_flags) or self.unexplained > 0

    def text(self) -> str:
        parts = []
        if self.holding_flags:
            n = len(self.holding_flags)
            parts.append(f"{n} open payment-holding flag{'' if n == 1 else 's'} ({', '.join(self.rules)})")
        if self.unexplained:
            n = self.unexplained
            parts.append(f"{n} absence{'' if n == 1 else 's'} without a reason")
        return " and ".join(parts)


def _check_who(by: str) -> None:
    if not by.strip() or len(by) > 200 or not by.isprintable():
        raise TabelError("--by must be non-empty printable text of at most 200 characters")


def _check_reason(reason: str) -> str:
    if not reason.strip() or len(reason) > MAX_REASON or not reason.replace("\n", " ").isprintable():
        raise TabelError(f"--reason must be non-empty printable text of at most {MAX_REASON} characters")
    return reason.strip()


def steps(store: Store, kindergarten: str, month: str) -> list[Step]:
    """Every step of the month, oldest first (nothing is ever deleted: a reopening is a step too)."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT step, done_by, time_ms, digest, reason FROM tabel_approvals "
            "WHERE kindergarten = ? AND month = ? ORDER BY id",
            (kindergarten, month),
        )
    return [Step(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]


def _approval(store: Store, kindergarten: str, month: str) -> tuple[Step, bytes] | None:
    """The approval in force (the newest ``approved`` not followed by a ``reopened``) and its CSV."""
    with store._tx(write=False) as sql:
        row = sql.one(
            "SELECT step, done_by, time_ms, digest, reason, document FROM tabel_approvals "
            "WHERE kindergarten = ? AND month = ? AND step IN ('approved', 'reopened') "
            "ORDER BY id DESC LIMIT 1",
            (kindergarten, month),
        )
    if row is None or row[0] != "approved":
        return None
    return Step(str(row[0]), str(row[1]), int(row[2]), str(row[3]), str(row[4])), bytes(row[5])


def frozen(store: Store, kindergarten: str, month: str) -> bytes | None:
    """The approved CSV of the month, or None if it is not approved (or was reopened since)."""
    found = _approval(store, kindergarten, month)
    return None if found is None else found[1]


def _record(
    store: Store,
    kindergarten: str,
    month: str,
    step: str,
    *,
    by: str,
    now_ms: int,
    doc: bytes,
    reason: str = "",
) -> str:
    digest = hashlib.sha256(doc).hexdigest()
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO tabel_approvals "
            "(kindergarten, month, step, done_by, time_ms, digest, document, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (kindergarten, month, step, by, now_ms, digest, doc, reason),
        )
    return digest


def concerns(tabel: status.Tabel) -> Concerns:
    """The month's open holding flags and absences without a reason."""
    holding = [f for f in tabel.flags if f.holding and f.cleared is None]
    unexplained = sum(1 for r in tabel.rows if r.status == "absent" and not r.absence_reason)
    return Concerns([f.id for f in holding], sorted({f.rule for f in holding}), unexplained)


def submit(store: Store, kindergarten: str, month: str, *, by: str, now_ms: int) -> str:
    """The director submits the month as it is now; returns the CSV's SHA-256."""
    _check_who(by)
    if frozen(store, kindergarten, month) is not None:
        raise TabelError(f"{kindergarten} {month} is already approved (the district reopens it first)")
    doc = to_csv(status.build(store, kindergarten, month))
    return _record(store, kindergarten, month, "submitted", by=by, now_ms=now_ms, doc=doc)


def approve(
    store: Store, kindergarten: str, month: str, *, by: str, now_ms: int, reason: str | None = None
) -> str:
    """The district approves the submitted month; refused if it changed since it was submitted, and,
    without a ``reason``, if it has open payment-holding flags or absences without a reason."""
    _check_who(by)
    why = "" if reason is None else _check_reason(reason)
    done = steps(store, kindergarten, month)
    if frozen(store, kindergarten, month) is not None:
        raise TabelError(f"{kindergarten} {month} is already approved")
    reopened = [i for i, s in enumerate(done) if s.step == "reopened"]
    since = done[reopened[-1] + 1 :] if reopened else done
    submitted = [s for s in since if s.step == "submitted"]
    if not submitted:
        again = " since it was reopened" if reopened else ""
        raise NotFound(f"{kindergarten} {month} was not submitted{again}")
    tabel = status.build(store, kindergarten, month)
    doc = to_csv(tabel)
    if hashlib.sha256(doc).hexdigest() != submitted[-1].digest:
        raise TabelError(f"{kindergarten} {month} changed since it was submitted: the director submits again")
    found = concerns(tabel)
    if found and not why:
        raise TabelError(
            f"{kindergarten} {month} has {found.text()}: "
            "approve with --reason TEXT to approve it anyway (the reason is recorded)"
        )
    return _record(store, kindergarten, month, "approved", by=by, now_ms=now_ms, doc=doc, reason=why)


def reopen(store: Store, kindergarten: str, month: str, *, by: str, reason: str, now_ms: int) -> str:
    """The district reopens an approved month (with a reason): it is no longer frozen, the director
    submits it again and the district approves it again. Returns the digest of the approval reopened."""
    _check_who(by)
    why = _check_reason(reason)
    found = _approval(store, kindergarten, month)
    if found is None:
        raise TabelError(f"{kindergarten} {month} is not approved: nothing to reopen")
    return _record(store, kindergarten, month, "reopened", by=by, now_ms=now_ms, doc=found[1], reason=why)


def _rows(doc: bytes) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    rows = list(csv.reader(io.StringIO(doc.decode("utf-8", errors="replace"), newline="")))
    header = rows[0] if rows else []
    col = {name: i for i, name in enumerate(header)}
    if "child" not in col or "date" not in col:
        return header, {}
    return header, {(r[col["child"]], r[col["date"]]): r for r in rows[1:] if len(r) == len(header)}


def _payable(header: list[str], rows: dict[tuple[str, str], list[str]]) -> int:
    if "payable" not in header:
        return 0
    i = header.index("payable")
    return sum(1 for r in rows.values() if r[i] == "1")


def _tenge(tiyn: int) -> str:
    return f"{tiyn // 100}.{tiyn % 100:02d} tenge"


def causes(tabel: status.Tabel, approved: Step, doc: bytes, current: bytes) -> str:
    """In words: what changed between the approved CSV ``doc`` and ``current``, and the payable amount."""
    old_header, old = _rows(doc)
    new_header, new = _rows(current)
    col = {name: i for i, name in enumerate(new_header)}
    said: list[str] = []
    if old_header == new_header and "status" in col:
        by_entries = by_calendar = by_reason = 0
        for key in sorted(set(old) | set(new)):
            a, b = old.get(key), new.get(key)
            if a == b:
                continue
            if a is None or b is None:
                by_entries += 1
                continue
            moved = {c for c in ("status", "first_in", "last_out", "method") if a[col[c]] != b[col[c]]}
            kinds = {a[col["status"]], b[col["status"]]}
            if moved and kinds & {"closed", "not_enrolled"} and "present" not in kinds:
                by_calendar += 1
            elif moved:
                by_entries += 1
            elif a[col["absence_reason"]] != b[col["absence_reason"]]:
                by_reason += 1
        if by_entries:
            said.append(f"entries arrived or changed after approval ({by_entries} child-days)")
        if by_reason:
            said.append(f"absence reasons entered after approval ({by_reason} child-days)")
        if by_calendar:
            said.append(f"the calendar or roster changed after approval ({by_calendar} child-days)")
    cleared = [
        (f, f.cleared)
        for f in tabel.flags
        if f.holding and f.cleared and int(f.cleared["time_ms"]) > approved.time_ms
    ]
    for f, by in cleared[:3]:
        said.append(f"flag {f.id} ({f.rule}) was cleared after approval by {by['by']}: {by['reason']!r}")
    if len(cleared) > 3:
        said.append(f"{len(cleared) - 3} more flags cleared after approval")
    if not said:
        said.append("the табель's rows changed after approval")
    before, after = _payable(old_header, old), _payable(new_header, new)
    rate = tabel.rate_tiyn
    if before == after:
        money = f"the payable amount is unchanged ({after} child-days, {_tenge(after * rate)})"
    else:
        money = (
            f"the payable amount would change from {_tenge(before * rate)} to {_tenge(after * rate)} "
            f"({before} -> {after} payable child-days)"
        )
    return "; ".join(said) + "; " + money


def check(
    store: Store,
    kindergarten: str,
    month: str,
    current: bytes,
    *,
    now_ms: int,
    tabel: status.Tabel | None = None,
) -> str | None:
    """If the month is approved and ``current`` differs, record the alarm (once per digest) and say so,
    naming the cause. ``tabel`` is the табель ``current`` was made from (built here when not given)."""
    found = _approval(store, kindergarten, month)
    if found is None or found[1] == current:
        return None
    approved, doc = found
    digest = hashlib.sha256(current).hexdigest()
    head = f"approved табель {kindergarten} {month} (sha256 {approved.digest}) would now be {digest}: "
    for a in store.alarms():
        if a.kind == ALARM and a.detail.startswith(head):
            return a.detail
    if tabel is None:
        tabel = status.build(store, kindergarten, month)
    detail = head + causes(tabel, approved, doc, current)
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
    changed = check(store, kindergarten, month, csv_now, now_ms=now_ms, tabel=tabel)
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

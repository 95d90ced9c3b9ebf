"""Each kindergarten's time zone, opening hours, per-child-day rate and calendar, and absences with reasons.

Defaults (no settings stored): ``Asia/Almaty`` (UTC+5 since March 2024), open 07:00–19:00, rate 0 tiyn,
Monday–Friday working, Saturday and Sunday closed, Kazakhstan's public holidays (the ``holidays``
package, transfers included) holidays. A day set in ``tabel_days`` (``working``, ``holiday`` or
``closed``) overrides both. See docs/tabel.md.
"""

from __future__ import annotations

import calendar as _cal
import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from register.store.base import Store
from register.tabel.errors import TabelError

DEFAULT_TZ: Final = "Asia/Almaty"
DAY_KINDS: Final = ("working", "holiday", "closed")

#: The fixed list of absence reasons (code → meaning); docs/tabel.md prints it.
REASONS: Final = {
    "child_ill": "child ill",
    "parent_ill": "parent ill",
    "quarantine": "quarantine",
    "repairs": "kindergarten repairs",
    "sanatorium": "sanatorium treatment",
    "parents_leave": "parents' leave",
    "summer": "summer period",
    "family": "family circumstances",
    "no_reason": "without valid reason",
}

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Settings:
    """A kindergarten's time zone, opening hours (local HH:MM) and rate per payable child-day."""

    kindergarten: str
    tz: str = DEFAULT_TZ
    opens: str = "07:00"
    closes: str = "19:00"
    rate_tiyn: int = 0

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def minutes(self, hhmm: str) -> int:
        return int(hhmm[:2]) * 60 + int(hhmm[3:])


def parse_month(text: str) -> tuple[int, int]:
    match = _MONTH.fullmatch(text)
    if match is None:
        raise TabelError(f"--month {text!r}: expected YYYY-MM")
    return int(match[1]), int(match[2])


def month_days(month: str) -> list[dt.date]:
    year, mon = parse_month(month)
    return [dt.date(year, mon, d) for d in range(1, _cal.monthrange(year, mon)[1] + 1)]


def parse_day(text: str, where: str = "--day") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise TabelError(f"{where} {text!r}: expected YYYY-MM-DD") from None


def _check_tz(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise TabelError(f"--tz {tz!r}: not an IANA time zone (for example Asia/Almaty)") from None


def get_settings(store: Store, kindergarten: str) -> Settings:
    with store._tx(write=False) as sql:
        row = sql.one(
            "SELECT tz, opens, closes, rate_tiyn FROM tabel_settings WHERE kindergarten = ?", (kindergarten,)
        )
    if row is None:
        return Settings(kindergarten)
    return Settings(kindergarten, str(row[0]), str(row[1]), str(row[2]), int(row[3]))


def set_settings(
    store: Store,
    kindergarten: str,
    *,
    tz: str | None = None,
    opens: str | None = None,
    closes: str | None = None,
    rate_tiyn: int | None = None,
) -> Settings:
    """Change the given settings (the others keep their value); returns the result."""
    old = get_settings(store, kindergarten)
    new = Settings(
        kindergarten,
        old.tz if tz is None else tz,
        old.opens if opens is None else opens,
        old.closes if closes is None else closes,
        old.rate_tiyn if rate_tiyn is None else rate_tiyn,
    )
    _check_tz(new.tz)
    for name, value in (("--opens", new.opens), ("--closes", new.closes)):
        if not _HHMM.fullmatch(value):
            raise TabelError(f"{name} {value!r}: expected HH:MM")
    if new.minutes(new.opens) >= new.minutes(new.closes):
        raise TabelError(f"--opens {new.opens} must be before --closes {new.closes}")
    if new.rate_tiyn < 0:
        raise TabelError("--rate-tiyn must be a non-negative integer")
    with store._tx(write=True) as sql:
        sql.run("DELETE FROM tabel_settings WHERE kindergarten = ?", (kindergarten,))
        sql.run(
            "INSERT INTO tabel_settings (kindergarten, tz, opens, closes, rate_tiyn) VALUES (?, ?, ?, ?, ?)",
            (kindergarten, new.tz, new.opens, new.closes, new.rate_tiyn),
        )
    return new


def set_days(store: Store, kindergarten: str, days: Iterable[tuple[dt.date, str, str]]) -> int:
    """Set the kind of each ``(day, kind, note)`` in one transaction; returns how many were set."""
    rows = list(days)
    for day, kind, _ in rows:
        if kind not in DAY_KINDS:
            raise TabelError(f"{day}: kind {kind!r} is not one of {', '.join(DAY_KINDS)}")
    with store._tx(write=True) as sql:
        for day, kind, note in rows:
            sql.run(
                "DELETE FROM tabel_days WHERE kindergarten = ? AND day = ?", (kindergarten, day.isoformat())
            )
            sql.run(
                "INSERT INTO tabel_days (kindergarten, day, kind, note) VALUES (?, ?, ?, ?)",
                (kindergarten, day.isoformat(), kind, note),
            )
    return len(rows)


def parse_calendar_csv(raw: bytes) -> list[tuple[dt.date, str, str]]:
    """``date,kind[,note]`` rows (header on line 1); the first bad line is named, nothing is half-read."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TabelError("calendar CSV is not UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:2] != ["date", "kind"]:
        raise TabelError("calendar CSV line 1: expected the header date,kind[,note]")
    out: list[tuple[dt.date, str, str]] = []
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        where = f"calendar CSV line {reader.line_num}"
        if len(row) < 2:
            raise TabelError(f"{where}: expected date,kind[,note]")
        kind = row[1].strip().lower()
        if kind not in DAY_KINDS:
            raise TabelError(f"{where}: kind {row[1]!r} is not one of {', '.join(DAY_KINDS)}")
        out.append((parse_day(row[0], where + ": date"), kind, row[2].strip() if len(row) > 2 else ""))
    return out


def national_holidays(days: list[dt.date]) -> tuple[dict[dt.date, str], set[dt.date]]:
    """Kazakhstan's public holidays among ``days`` (name in Kazakh; days off moved by a transfer and
    holidays on a weekend carried to the next working day included) and the weekend days a transfer made
    working, from the ``holidays`` package's calendar for KZ."""
    import holidays  # noqa: PLC0415 - only the табель needs the calendar

    wanted = set(days)
    kz = holidays.country_holidays("KZ", years=sorted({d.year for d in days}), language="kk")
    off = {d: str(name) for d, name in kz.items() if d in wanted}
    return off, {d for d in kz.weekend_workdays if d in wanted}


def day_kinds(store: Store, kindergarten: str, days: list[dt.date]) -> dict[dt.date, str]:
    """The kind of each day: the kindergarten's own (stored), else a national holiday of Kazakhstan, else
    working Monday–Friday (and on a weekend day a transfer made working) and closed at weekends."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT day, kind FROM tabel_days WHERE kindergarten = ? AND day >= ? AND day <= ?",
            (kindergarten, days[0].isoformat(), days[-1].isoformat()),
        )
    stored = {dt.date.fromisoformat(str(d)): str(k) for d, k in rows}
    off, moved = national_holidays(days)
    return {
        d: stored.get(d)
        or ("holiday" if d in off else "working" if d.weekday() < 5 or d in moved else "closed")
        for d in days
    }


def add_absence(
    store: Store,
    kindergarten: str,
    child: str,
    day: dt.date,
    reason: str,
    *,
    document: str | None,
    by: str,
    now_ms: int,
) -> None:
    """Record why ``child`` was absent on ``day`` (the newest record of a day counts; none is edited)."""
    if reason not in REASONS:
        raise TabelError(f"--reason {reason!r} is not one of: {', '.join(REASONS)}")
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO tabel_absences (kindergarten, child, day, reason, document, entered_by, time_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kindergarten, child, day.isoformat(), reason, document, by, now_ms),
        )


def absences(store: Store, kindergarten: str, days: list[dt.date]) -> dict[tuple[str, dt.date], str]:
    """The reason per (child, day) in the range: the newest record of each wins."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT child, day, reason FROM tabel_absences WHERE kindergarten = ? AND day >= ? AND day <= ? "
            "ORDER BY id",
            (kindergarten, days[0].isoformat(), days[-1].isoformat()),
        )
    return {(str(c), dt.date.fromisoformat(str(d))): str(r) for c, d, r in rows}

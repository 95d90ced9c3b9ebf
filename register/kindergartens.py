"""Per-kindergarten settings the console and statements need: the district it belongs to, its time zone.

A kindergarten without a row is in no district and keeps the default zone, ``Asia/Almaty``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from register.errors import ConfigError
from register.store.base import Store

DEFAULT_TIMEZONE: Final = "Asia/Almaty"


@dataclass(frozen=True)
class Kindergarten:
    """A kindergarten's district (None: not assigned) and IANA time zone name."""

    name: str
    district: str | None
    timezone: str

    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _check_text(value: str, what: str) -> str:
    if not value.strip() or len(value) > 200 or not value.isprintable():
        raise ConfigError(f"{what} must be non-empty printable text of at most 200 characters")
    return value


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA zone this system knows; ConfigError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone {name!r} is not a known IANA time zone (e.g. Asia/Almaty)") from None
    return name


def kindergarten(store: Store, name: str) -> Kindergarten:
    """The settings of kindergarten ``name`` (defaults when none were set)."""
    with store._tx(write=False) as sql:
        row = sql.one("SELECT district, timezone FROM kindergartens WHERE kindergarten = ?", (name,))
    if row is None:
        return Kindergarten(name, None, DEFAULT_TIMEZONE)
    return Kindergarten(name, row[0], row[1] or DEFAULT_TIMEZONE)


def set_kindergarten(
    store: Store, name: str, *, district: str | None = None, timezone: str | None = None
) -> Kindergarten:
    """Set the district and/or the time zone of ``name`` (what is not given stays as it was)."""
    _check_text(name, "kindergarten")
    if district is not None:
        _check_text(district, "--district")
    if timezone is not None:
        check_timezone(timezone)
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO kindergartens (kindergarten, district, timezone) VALUES (?, ?, ?) "
            "ON CONFLICT (kindergarten) DO UPDATE SET "
            "district = COALESCE(excluded.district, kindergartens.district), "
            "timezone = COALESCE(excluded.timezone, kindergartens.timezone)",
            (name, district, timezone),
        )
    return kindergarten(store, name)


def in_district(store: Store, district: str) -> list[str]:
    """The kindergartens assigned to ``district``, sorted."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT kindergarten FROM kindergartens WHERE district = ? ORDER BY kindergarten", (district,)
        )
    return [str(r[0]) for r in rows]

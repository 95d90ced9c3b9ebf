"""Which district each kindergarten belongs to: what a district official's scope covers.

A kindergarten's time zone, hours and calendar are the табель's (``register/tabel/calendar.py``,
``kgate register calendar set --tz``); statements and the console read the zone from there.
"""

from __future__ import annotations

from register.errors import ConfigError
from register.store.base import Store


def _check_text(value: str, what: str) -> str:
    if not value.strip() or len(value) > 200 or not value.isprintable():
        raise ConfigError(f"{what} must be non-empty printable text of at most 200 characters")
    return value


def district_of(store: Store, kindergarten: str) -> str | None:
    """The district of ``kindergarten``, or None when none was set."""
    with store._tx(write=False) as sql:
        row = sql.one("SELECT district FROM kindergartens WHERE kindergarten = ?", (kindergarten,))
    return None if row is None else str(row[0])


def set_district(store: Store, kindergarten: str, district: str) -> None:
    """Put ``kindergarten`` in ``district`` (replacing any earlier district)."""
    _check_text(kindergarten, "kindergarten")
    _check_text(district, "--district")
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO kindergartens (kindergarten, district) VALUES (?, ?) "
            "ON CONFLICT (kindergarten) DO UPDATE SET district = excluded.district",
            (kindergarten, district),
        )


def in_district(store: Store, district: str) -> list[str]:
    """The kindergartens assigned to ``district``, sorted."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT kindergarten FROM kindergartens WHERE district = ? ORDER BY kindergarten", (district,)
        )
    return [str(r[0]) for r in rows]

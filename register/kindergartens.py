"""Which district each kindergarten belongs to: what a district official's scope covers; which
kindergartens and districts the register knows, so a mistyped id is refused with "did you mean".

A kindergarten's time zone, hours and calendar are the табель's (``register/tabel/calendar.py``,
``kgate register calendar set --tz``); statements and the console read the zone from there.
"""

from __future__ import annotations

import difflib

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


#: Where a kindergarten id is recorded: a roster, a device or enrolment token, a district, a calendar.
_KNOWN_SQL = (
    "SELECT kindergarten FROM roster_versions UNION SELECT kindergarten FROM devices "
    "UNION SELECT kindergarten FROM enrol_tokens UNION SELECT kindergarten FROM kindergartens "
    "UNION SELECT kindergarten FROM tabel_settings"
)


def known(store: Store) -> list[str]:
    """Every kindergarten id the register knows (a roster, a device or token, a district or a
    calendar names it), sorted."""
    with store._tx(write=False) as sql:
        rows = sql.all(_KNOWN_SQL)
    return sorted({str(r[0]) for r in rows})


def districts(store: Store) -> list[str]:
    """Every district a kindergarten was put in, sorted."""
    with store._tx(write=False) as sql:
        rows = sql.all("SELECT DISTINCT district FROM kindergartens")
    return sorted(str(r[0]) for r in rows)


def _refuse(option: str, value: str, names: list[str], what: str, how: str) -> ConfigError:
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        shown = ", ".join(repr(n) for n in names[:5])
        hint = f"the register knows {shown}{' and more' if len(names) > 5 else ''}"
    return ConfigError(f"{option} {value!r}: no {what} of that id in the register ({how}); {hint}")


def check_kindergarten(store: Store, kindergarten: str, option: str = "--kindergarten") -> str:
    """``kindergarten`` if the register knows it (or knows none yet); else ConfigError with the
    nearest known ids ("did you mean …", difflib)."""
    names = known(store)
    if not names or kindergarten in names:
        return kindergarten
    how = "a kindergarten is known once its roster is imported or a gate enrolled"
    raise _refuse(option, kindergarten, names, "kindergarten", how)


def check_district(store: Store, district: str, option: str = "--scope") -> str:
    """``district`` if a kindergarten is in it (or none is in any yet); else ConfigError with the
    nearest known districts."""
    names = districts(store)
    if not names or district in names:
        return district
    how = "kgate register kindergarten set K --district D puts a kindergarten in one"
    raise _refuse(option, district, names, "district", how)

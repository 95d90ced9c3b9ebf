"""A simulated kindergarten: a seeded roster and one day of arrivals and departures at one gate.

Used by ``kgate demo`` and by tests and benchmarks that need realistic ledgers. Deterministic for a
given seed, so a demo run can be compared with another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

ALMATY = timezone(timedelta(hours=5), "Asia/Almaty")  # Kazakhstan has used UTC+5 nationwide since 2024

GROUPS = ("Балапан", "Құлыншақ", "Жұлдызша", "Күншуақ", "Ботақан")
GIRLS = (
    "Аружан", "Айша", "Томирис", "Інжу", "Айару", "Медина", "Әмина", "Ұлжан", "Жанель", "Асылым",
    "Айгерім", "Фатима", "Аяна", "Хадиша", "Малика", "Сафия",
)  # fmt: skip
BOYS = (
    "Әлихан", "Нұрислам", "Ерасыл", "Рамазан", "Санжар", "Дамир", "Алихан", "Мирас", "Нұрсұлтан",
    "Ернұр", "Бекзат", "Тимур", "Қайрат", "Өркен",
)  # fmt: skip
FAMILY = (
    "Сейітов", "Нұрланов", "Әбенов", "Жақыпов", "Омаров", "Қасымов", "Есенов", "Бекмұратов", "Ахметов",
    "Төлеуов", "Серікбаев", "Мұхамедиев", "Ким", "Иванов", "Ғабдуллин", "Исаев",
)  # fmt: skip


def _family_name(family: str, girl: bool) -> str:
    """Kazakh and Russian surnames agree with the child's gender (Омаров → Омарова); Ким does not change."""
    return family + "а" if girl and family.endswith(("ов", "ев", "ин")) else family


@dataclass(frozen=True)
class Child:
    """One enrolled child as the roster knows them."""

    child_id: str
    name: str
    group: str


@dataclass(frozen=True)
class Visit:
    """When a child arrived and left (local time), or ``None`` for an absence."""

    child: Child
    arrive: datetime | None
    leave: datetime | None


def roster(count: int = 120, seed: int = 7) -> list[Child]:
    """``count`` children in five groups with Kazakh (and a few Russian/Korean) names."""
    rng = random.Random(seed)
    children = []
    for i in range(count):
        girl = rng.random() < 0.5
        given = rng.choice(GIRLS if girl else BOYS)
        family = _family_name(rng.choice(FAMILY), girl)
        children.append(Child(f"KZ{seed:02d}{i + 1:04d}", f"{given} {family}", GROUPS[i % len(GROUPS)]))
    return children


def day(children: list[Child], on: date, *, seed: int = 7, absent_share: float = 0.06) -> list[Visit]:
    """A realistic day: arrivals 07:30–09:00 bunched around 08:10, departures 16:30–19:00."""
    rng = random.Random(f"{seed}-{on.isoformat()}")
    visits = []
    for child in children:
        if rng.random() < absent_share:
            visits.append(Visit(child, None, None))
            continue
        arrive = _clamp(rng.gauss(8 * 60 + 10, 18), 7 * 60 + 30, 9 * 60)
        leave = _clamp(rng.gauss(17 * 60 + 50, 30), 16 * 60 + 30, 19 * 60)
        visits.append(Visit(child, _at(on, arrive, rng), _at(on, leave, rng)))
    return visits


def _clamp(minutes: float, lo: int, hi: int) -> float:
    return min(max(minutes, lo), hi)


def _at(on: date, minutes: float, rng: random.Random) -> datetime:
    base = datetime.combine(on, time(0, 0), tzinfo=ALMATY)
    return base + timedelta(minutes=minutes, seconds=rng.randrange(60))


def events(visits: list[Visit]) -> list[tuple[datetime, str, Child]]:
    """The day's gate events in time order: (local time, "in"/"out", child)."""
    out = []
    for v in visits:
        if v.arrive and v.leave:
            out += [(v.arrive, "in", v.child), (v.leave, "out", v.child)]
    return sorted(out, key=lambda e: (e[0], e[2].child_id))


def utc_ms(when: datetime) -> int:
    return int(when.astimezone(UTC).timestamp() * 1000)

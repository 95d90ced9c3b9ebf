"""The words parents read: one short message per check-in or check-out, in Kazakh, Russian or English.

A message names the child by first name, says in or out with the local time and date, the
kindergarten and gate, who picked the child up, and links to the parent page. It carries only what the
register knows: names come from the roster; the ``out`` entry's ``guardian`` evidence is only an id
looked up among the child's guardians on the roster (register/notify/outbox.py), and any other value is
shown as "not on the roster", never as it is. It never carries a photo or a face distance. A late
delivery (the gate was offline) says so and keeps the time recorded at the gate.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any, Final

PARENT_PATH: Final = "/parent"
REPORT_PATH: Final = "/parent/report?e="  # register/notify/report_web.py

_TEXTS: Final[dict[str, dict[str, str]]] = {
    "kk": {
        "in": "{child} балабақшаға келді: {time}, {date}.",
        "out": "{child} балабақшадан кетті: {time}, {date}.",
        "place": "{kindergarten}, {gate} кіреберісі.",
        "picked": "Алып кеткен: {guardian}.",
        "picked_unknown": "Алып кеткен: баланың тізімінде жоқ адам.",
        "late": "Хабарлама кешігіп жіберілді; уақыт — кіреберісте тіркелген уақыт.",
        "link": "Бала болмады ма? Хабарлаңыз: {url}",
    },
    "ru": {
        "in": "{child}: приход в детский сад в {time}, {date}.",
        "out": "{child}: уход из детского сада в {time}, {date}.",
        "place": "{kindergarten}, вход «{gate}».",
        "picked": "Забрал(а): {guardian}.",
        "picked_unknown": "Забрал(а): человек, которого нет в списке ребёнка.",
        "late": "Сообщение отправлено с опозданием; время указано по отметке на входе.",
        "link": "Ребёнка не было? Сообщите: {url}",
    },
    "en": {
        "in": "{child} arrived at kindergarten at {time} on {date}.",
        "out": "{child} left kindergarten at {time} on {date}.",
        "place": "{kindergarten}, gate {gate}.",
        "picked": "Picked up by {guardian}.",
        "picked_unknown": "Picked up by someone not on the roster.",
        "late": "Sent late; the time is the one recorded at the gate.",
        "link": "Not there? Report it: {url}",
    },
}


@dataclass(frozen=True)
class Message:
    """A rendered notification: a subject line (email) and the text every channel sends."""

    subject: str
    text: str


def local_time(time_ms: int, zone: str) -> dt.datetime:
    """The entry's wall time in the kindergarten's zone."""
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).astimezone(zoneinfo.ZoneInfo(zone))


def render(payload: dict[str, Any], lang: str, parent_url: str, key: str | None = None) -> Message:
    """The message for one outbox row's ``payload`` (see :mod:`register.notify.outbox`) in ``lang``;
    with the row's ``key``, the link is that event's "not there" report page."""
    t = _TEXTS.get(lang, _TEXTS["ru"])
    when = local_time(int(payload["time_ms"]), str(payload["zone"]))
    first = t[str(payload["kind"])].format(
        child=payload["child_name"], time=when.strftime("%H:%M"), date=when.strftime("%d.%m.%Y")
    )
    lines = [
        first,
        t["place"].format(
            kindergarten=payload.get("kindergarten_name", payload["kindergarten"]), gate=payload["gate"]
        ),
    ]
    # rows queued before 2026-12 carried "picked_up_by" (possibly the gate's free text): never shown
    if isinstance(payload.get("pickup_name"), str):
        lines.append(t["picked"].format(guardian=payload["pickup_name"]))
    elif payload.get("pickup_unknown"):
        lines.append(t["picked_unknown"])
    if payload.get("late"):
        lines.append(t["late"])
    path = PARENT_PATH if key is None else REPORT_PATH + key
    lines.append(t["link"].format(url=parent_url.rstrip("/") + path))
    return Message(subject=first, text="\n".join(lines) + "\n")

"""What the gate screen shows: plain frozen data, built by the terminal each frame."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from terminal.decide import Direction
from terminal.i18n import DEFAULT_LANG

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class CardKind(StrEnum):
    """The colour of a result card: green, red, or amber."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    ERROR = "error"


@dataclass(frozen=True)
class ResultCard:
    """The big card after a scan. ``message_key`` overrides the default line (e.g. ``card.already_in``).

    Accepted: greeting (check-in) or farewell (check-out) with ``name``, group, time and direction.
    Refused: ``message_key`` such as ``refused.unknown_badge``; a pickup refusal names the child
    (``name``) and the adult whose badge was shown (``guardian``, when the roster knows it). Error:
    ``message_key`` such as ``error.not_recorded``.
    """

    kind: CardKind
    lang: str = DEFAULT_LANG
    name: str | None = None
    group: str | None = None
    time: dt.time | None = None
    direction: Direction | None = None
    message_key: str | None = None
    guardian: str | None = None


@dataclass(frozen=True)
class StatusInfo:
    """The status bar and the error states shown even without a card."""

    clock: dt.datetime | None = None
    clock_synced: bool = True
    roster_version: int | None = None
    roster_stale: bool = False
    pending_sync: int = 0
    disk_free_percent: float | None = None
    disk_full: bool = False
    camera_ok: bool = True
    database_locked: bool = False

    @property
    def alerts(self) -> tuple[str, ...]:
        """Message keys of the active error states, most serious first."""
        flags = (
            (not self.camera_ok, "error.camera_lost"),
            (self.disk_full, "error.disk_full"),
            (self.database_locked, "error.database_locked"),
            (self.roster_stale, "error.roster_stale"),
            (not self.clock_synced, "error.clock_unsynced"),
        )
        return tuple(key for active, key in flags if active)


@dataclass(frozen=True)
class ScreenState:
    """One frame's worth of screen: preview (H×W×3 uint8 RGB), optional card, status, UI language.

    ``mode``: the gate mode (``qr``, ``qr+face``, ``face``); the face modes show a face guide and ask
    the child to look at the camera.
    """

    status: StatusInfo = StatusInfo()
    preview: npt.NDArray[np.uint8] | None = field(default=None, compare=False, repr=False)
    card: ResultCard | None = None
    lang: str = DEFAULT_LANG
    selected_direction: Direction | None = None
    mode: str = "qr"

    @property
    def face_mode(self) -> bool:
        """True in the modes that look at faces."""
        return self.mode in FACE_MODES


#: Gate modes that use the camera for faces (terminal/config.py MODES).
FACE_MODES = frozenset({"qr+face", "face"})
#: The idle prompt of each mode.
IDLE_PROMPTS = {
    "qr": "prompt.show_badge",
    "qr+face": "prompt.badge_and_face",
    "face": "prompt.look_at_camera",
}


@dataclass(frozen=True)
class TodayChild:
    """One child on the staff list: absent (no ``time_in``), in, or left (``time_out`` set).

    ``alert``: message key of something staff must see on this child's line (a refused pickup).
    """

    name: str
    time_in: dt.time | None = None
    time_out: dt.time | None = None
    alert: str | None = None


@dataclass(frozen=True)
class TodayGroup:
    name: str
    children: tuple[TodayChild, ...] = ()

    @property
    def present(self) -> tuple[TodayChild, ...]:
        return tuple(c for c in self.children if c.time_in is not None and c.time_out is None)

    @property
    def left(self) -> tuple[TodayChild, ...]:
        return tuple(c for c in self.children if c.time_in is not None and c.time_out is not None)

    @property
    def absent(self) -> tuple[TodayChild, ...]:
        return tuple(c for c in self.children if c.time_in is None)


@dataclass(frozen=True)
class TodayList:
    """Today's attendance by group, read-only, for staff beside the terminal."""

    date: dt.date
    groups: tuple[TodayGroup, ...] = ()

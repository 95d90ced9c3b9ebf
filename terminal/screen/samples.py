"""Sample gate screens (accepted, refused, error, idle, today) for tests, docs and the demo.

``python -m terminal.screen.samples OUT_DIR [--size 800x480]`` writes them as PNG files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from terminal.decide import Direction
from terminal.i18n import LANGUAGES
from terminal.screen.config import ScreenConfig
from terminal.screen.gate import GateScreen
from terminal.screen.state import (
    CardKind,
    ResultCard,
    ScreenState,
    StatusInfo,
    TodayChild,
    TodayGroup,
    TodayList,
)

MORNING = dt.datetime(2026, 1, 14, 8, 12, 37)
STATUS = StatusInfo(clock=MORNING, roster_version=42, pending_sync=3, disk_free_percent=71)


def synthetic_frame(
    width: int = 1280, height: int = 720, seed: int = 1
) -> np.ndarray[tuple[int, ...], np.dtype[np.uint8]]:
    """A camera-like RGB frame: a warm gradient with a white card and a QR-ish block in the middle."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = 60 + 80 * x // width
    frame[..., 1] = 70 + 60 * y // height
    frame[..., 2] = 90
    cy, cx, side = height // 2, width // 2, height // 3
    frame[cy - side // 2 - 20 : cy + side // 2 + 20, cx - side // 2 - 20 : cx + side // 2 + 20] = 235
    modules = rng.integers(0, 2, (21, 21), dtype=np.uint8)
    block = np.kron(modules, np.ones((side // 21, side // 21), np.uint8)) * 235
    bh, bw = block.shape
    frame[cy - bh // 2 : cy - bh // 2 + bh, cx - bw // 2 : cx - bw // 2 + bw] = block[..., None]
    return frame


def sample_states(lang: str) -> Iterator[tuple[str, ScreenState]]:
    """Named states covering every card kind and error state, cards in ``lang``."""
    frame = synthetic_frame()
    at = MORNING.time().replace(second=0)
    yield "idle", ScreenState(status=STATUS, preview=frame, lang=lang)
    yield (
        "idle-mode-out",
        ScreenState(status=STATUS, preview=frame, lang=lang, selected_direction=Direction.OUT),
    )
    accepted = ResultCard(CardKind.ACCEPTED, lang, "Аружан Сәрсенбайқызы", "Күншуақ", at, Direction.IN)
    yield "accepted-in", ScreenState(status=STATUS, preview=frame, card=accepted, lang=lang)
    leaving = ResultCard(CardKind.ACCEPTED, lang, "Нұрлан", "Балапан", dt.time(17, 45), Direction.OUT)
    yield "accepted-out", ScreenState(status=STATUS, preview=frame, card=leaving, lang=lang)
    already = ResultCard(CardKind.ACCEPTED, lang, "Аружан", "Күншуақ", at, Direction.IN, "card.already_in")
    yield "already-in", ScreenState(status=STATUS, preview=frame, card=already, lang=lang)
    refused = ResultCard(CardKind.REFUSED, lang, time=at, message_key="refused.unknown_badge")
    yield "refused-unknown", ScreenState(status=STATUS, preview=frame, card=refused, lang=lang)
    revoked = ResultCard(CardKind.REFUSED, lang, "Ғалым", "Күншуақ", at, message_key="refused.revoked_badge")
    yield "refused-revoked", ScreenState(status=STATUS, preview=frame, card=revoked, lang=lang)
    error = ResultCard(CardKind.ERROR, lang, time=at, message_key="error.not_recorded")
    broken = StatusInfo(
        clock=MORNING,
        clock_synced=False,
        roster_version=41,
        roster_stale=True,
        pending_sync=1240,
        disk_free_percent=0,
        disk_full=True,
    )
    yield "error-disk-full", ScreenState(status=broken, preview=frame, card=error, lang=lang)
    lost = StatusInfo(clock=MORNING, roster_version=42, pending_sync=3, disk_free_percent=71, camera_ok=False)
    yield "error-camera-lost", ScreenState(status=lost, lang=lang)


def sample_today() -> TodayList:
    """Three groups with children in, left and absent."""

    def kid(
        name: str, start: tuple[int, int] | None = None, end: tuple[int, int] | None = None
    ) -> TodayChild:
        return TodayChild(name, dt.time(*start) if start else None, dt.time(*end) if end else None)

    return TodayList(
        MORNING.date(),
        (
            TodayGroup(
                "Күншуақ",
                (
                    kid("Аружан Сәрсенбай", (8, 12)),
                    kid("Әлихан Қасым", (8, 3)),
                    kid("Ұлжан Нұрлан", (7, 58), (12, 30)),
                    kid("Іңкәр Өмір"),
                    kid("Айгүл Һадиева", (8, 20)),
                ),
            ),
            TodayGroup(
                "Балапан", (kid("Нұрлан Ғалым", (8, 1)), kid("Мария Иванова", (8, 15)), kid("Tom Smith"))
            ),
            TodayGroup("Ақбота", (kid("Данияр Үсен", (7, 45), (9, 10)), kid("Зере Ержан", (8, 30)))),
        ),
    )


def save_samples(out: Path, config: ScreenConfig | None = None) -> list[Path]:
    """Write every sample state in every language, plus the today list, to ``out``; returns the paths."""
    screen = GateScreen(config)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for lang in LANGUAGES:
        for name, state in sample_states(lang):
            path = out / f"{name}-{lang}.png"
            screen.render(state).save(path)
            paths.append(path)
        path = out / f"today-{lang}.png"
        screen.render_today(sample_today(), lang, STATUS).save(path)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="directory for the PNG files")
    parser.add_argument("--size", default="1024x600", help="WIDTHxHEIGHT (default 1024x600)")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    for path in save_samples(args.out, ScreenConfig(width=int(width), height=int(height))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

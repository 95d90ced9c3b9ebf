"""The gate screen, rendered by our own code into frames (Pillow images / numpy arrays).

``GateScreen(ScreenConfig()).render(ScreenState(...))`` gives a full-screen RGB image that a
display backend (``hardware.display``) shows, and that tests and the demo save as PNG screenshots.
"""

from terminal.decide import Direction
from terminal.screen.config import ScreenConfig
from terminal.screen.errors import FontNotFoundError, GlyphMissingError, ScreenConfigError, ScreenError
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

__all__ = [
    "CardKind",
    "Direction",
    "FontNotFoundError",
    "GateScreen",
    "GlyphMissingError",
    "ResultCard",
    "ScreenConfig",
    "ScreenConfigError",
    "ScreenError",
    "ScreenState",
    "StatusInfo",
    "TodayChild",
    "TodayGroup",
    "TodayList",
]

"""Colours of the gate screen (RGB). High contrast; readable from two metres in daylight."""

from typing import Final

from terminal.screen.state import CardKind

RGB = tuple[int, int, int]

BACKGROUND: Final[RGB] = (16, 20, 24)
PANEL: Final[RGB] = (30, 36, 43)
STATUS_BAR: Final[RGB] = (26, 31, 37)
TEXT: Final[RGB] = (236, 239, 242)
TEXT_DIM: Final[RGB] = (150, 160, 170)
DARK_TEXT: Final[RGB] = (24, 24, 24)
OK: Final[RGB] = (76, 208, 125)
WARN: Final[RGB] = (255, 194, 71)
BAD: Final[RGB] = (255, 107, 107)
GUIDE: Final[RGB] = (255, 255, 255)
NO_CAMERA: Final[RGB] = (58, 63, 69)
ALERT: Final[RGB] = (242, 169, 0)

CARD_FILL: Final[dict[CardKind, RGB]] = {
    CardKind.ACCEPTED: (27, 135, 63),
    CardKind.REFUSED: (198, 40, 40),
    CardKind.ERROR: (242, 169, 0),
}
CARD_TEXT: Final[dict[CardKind, RGB]] = {
    CardKind.ACCEPTED: (255, 255, 255),
    CardKind.REFUSED: (255, 255, 255),
    CardKind.ERROR: DARK_TEXT,
}
CARD_SYMBOL: Final[dict[CardKind, str]] = {
    CardKind.ACCEPTED: "✓",
    CardKind.REFUSED: "✗",
    CardKind.ERROR: "⚠",
}

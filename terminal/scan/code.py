"""What the scanner found in a frame: exact payload bytes, where, when, and by which decoder."""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[int, int]


@dataclass(frozen=True)
class DecodedCode:
    """One decoded QR symbol.

    ``data`` is the symbol's exact payload bytes (what :func:`terminal.badge.parse_badge` takes);
    ``text`` is the decoder's reading of them as text, honouring ECI and the QR default character
    sets (ISO-8859-1, Shift_JIS), for display and ``kgate scan``. ``corners`` are full-frame pixel
    coordinates, clockwise from the symbol's top-left.
    """

    data: bytes
    text: str
    corners: tuple[Point, Point, Point, Point]
    decoder: str

    @property
    def center(self) -> Point:
        xs = [p[0] for p in self.corners]
        ys = [p[1] for p in self.corners]
        return (sum(xs) // 4, sum(ys) // 4)


@dataclass(frozen=True)
class ScanResult:
    """The codes found in one frame, the frame's capture time, and how long decoding took."""

    codes: tuple[DecodedCode, ...]
    timestamp: float
    ms: float
    origin: str = ""

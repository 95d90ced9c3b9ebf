"""Thin adapters over the QR decoder libraries, all returning :class:`DecodedCode` in crop coordinates.

zxing-cpp is the primary decoder. pyzbar (needs the ``libzbar0`` system library) is optional and used
only on crops around symbols zxing-cpp found but could not decode; see ``docs/scanning.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import zxingcpp

from hardware.camera.frame import Image
from terminal.scan.code import DecodedCode, Point

_QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


@dataclass(frozen=True)
class Failed:
    """A symbol zxing-cpp located but could not decode: the bounding box to retry on."""

    x0: int
    y0: int
    x1: int
    y1: int


def zxing_read(gray: Image) -> tuple[list[DecodedCode], list[Failed]]:
    """Decode every QR symbol in ``gray``; also report located-but-undecodable ones."""
    codes: list[DecodedCode] = []
    failed: list[Failed] = []
    for result in zxingcpp.read_barcodes(
        gray, formats=_QR, text_mode=zxingcpp.TextMode.Plain, return_errors=True
    ):
        corners = _corners(result.position)
        if result.valid:
            codes.append(DecodedCode(bytes(result.bytes), result.text, corners, "zxing-cpp"))
        else:
            xs = [p[0] for p in corners]
            ys = [p[1] for p in corners]
            failed.append(Failed(min(xs), min(ys), max(xs), max(ys)))
    return codes, failed


def zbar_available() -> bool:
    """Whether pyzbar and its ``libzbar0`` system library can be loaded."""
    return _zbar() is not None


def zbar_read(gray: Image) -> list[DecodedCode]:
    """Decode QR symbols with zbar; ``data`` is zbar's output (equal to the payload for ASCII)."""
    pyzbar = _zbar()
    if pyzbar is None:
        return []
    codes = []
    for symbol in pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE]):
        polygon = [(int(p.x), int(p.y)) for p in symbol.polygon][:4]
        if len(polygon) < 4:
            left, top, width, height = symbol.rect
            polygon = [(left, top), (left + width, top), (left + width, top + height), (left, top + height)]
        data = bytes(symbol.data)
        text = data.decode("utf-8", errors="replace")
        codes.append(DecodedCode(data, text, (polygon[0], polygon[1], polygon[2], polygon[3]), "zbar"))
    return codes


_ZBAR_MODULE: list[Any] = []


def _zbar() -> Any:
    if not _ZBAR_MODULE:
        try:
            from pyzbar import pyzbar  # noqa: PLC0415 - optional, and loading libzbar is slow

            _ZBAR_MODULE.append(pyzbar)
        except (ImportError, OSError):
            _ZBAR_MODULE.append(None)
    return _ZBAR_MODULE[0]


def _corners(position: Any) -> tuple[Point, Point, Point, Point]:
    points = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    a, b, c, d = ((int(p.x), int(p.y)) for p in points)
    return (a, b, c, d)

"""The terminal's frame pipeline: full-resolution frame (or region) -> QR payload bytes, position, time.

1. Luminance of the frame's decode region (full resolution: never the 640 px preview).
2. zxing-cpp on it, asking also for symbols it located but could not decode.
3. Rescue, only for those: re-read a crop around each, upscaled, with zxing-cpp, then zbar if present.
   Frames without any QR-like pattern (most frames at a gate) never pay for step 3.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike

import cv2
import numpy as np

from hardware.camera.frame import Frame, Image, Region
from hardware.camera.replay import ReplaySource
from hardware.errors import EndOfReplay, UnreadableFrame
from terminal.scan.code import DecodedCode, ScanResult
from terminal.scan.decoders import Failed, zbar_read, zxing_read


@dataclass(frozen=True)
class ScanConfig:
    """How the pipeline decodes; the defaults are what ``bench/scan.py`` measured best.

    ``region``: part of the frame to decode (the screen's framing guide). ``rescue_scales``: upscale
    factors tried on a crop around each located-but-undecodable symbol (empty disables rescue).
    ``use_zbar``: try zbar on rescue crops when pyzbar/libzbar0 is installed. ``rescue_margin``: crop
    margin around the symbol as a fraction of its size. ``max_rescues``: failed symbols retried per frame.
    ``rescue_budget_ms``: no new rescue attempt starts once the frame has taken this long (the live gate
    sets it, so a hard frame on a slow Pi cannot hold up the next one; ``None`` for stills).
    """

    region: Region = field(default_factory=Region)
    rescue_scales: tuple[float, ...] = (1.5, 2.0)
    use_zbar: bool = True
    rescue_margin: float = 0.35
    max_rescues: int = 2
    rescue_budget_ms: float | None = None


class ScanPipeline:
    """Decodes QR codes in frames; one instance per camera, reused for every frame."""

    def __init__(self, config: ScanConfig | None = None) -> None:
        self.config = config or ScanConfig()

    def scan(self, frame: Frame) -> ScanResult:
        """All QR codes in ``frame`` (exact payload bytes) and the time the pipeline took, in ms."""
        started = time.perf_counter()
        pixels, (ox, oy) = frame.crop(self.config.region)
        gray = _gray(pixels)
        codes, failed = zxing_read(gray)
        if failed and not codes:
            codes = self._rescue(gray, failed, started)
        placed = tuple(_offset(code, ox, oy) for code in _unique(codes))
        ms = (time.perf_counter() - started) * 1000.0
        return ScanResult(codes=placed, timestamp=frame.timestamp, ms=ms, origin=frame.origin)

    def _rescue(self, gray: Image, failed: list[Failed], started: float) -> list[DecodedCode]:
        config = self.config
        budget = None if config.rescue_budget_ms is None else started + config.rescue_budget_ms / 1000.0
        for box in failed[: config.max_rescues]:
            crop, (cx, cy) = _crop_around(gray, box, config.rescue_margin)
            if crop.size == 0:
                continue
            for scale in config.rescue_scales:
                if budget is not None and time.perf_counter() > budget:
                    return []
                big = np.asarray(
                    cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC), dtype=np.uint8
                )
                found, _ = zxing_read(big)
                if not found and config.use_zbar:
                    found = zbar_read(big)
                if found:
                    return [_unscale(code, scale, cx, cy) for code in found]
        return []


def scan_images(
    paths: Iterable[str | PathLike[str]], pipeline: ScanPipeline | None = None
) -> Iterator[tuple[str, ScanResult | UnreadableFrame]]:
    """Run the pipeline over still images (or folders, or videos) through the replay camera.

    Yields ``(origin, result)``; an unreadable file yields its :class:`UnreadableFrame` and the
    replay goes on with the next file.
    """
    pipeline = pipeline or ScanPipeline()
    with ReplaySource(paths) as source:
        while True:
            try:
                frame = source.read()
            except EndOfReplay:
                return
            except UnreadableFrame as exc:
                yield exc.path, exc
                continue
            yield frame.origin, pipeline.scan(frame)


def _gray(pixels: Image) -> Image:
    # OpenCV's conversion is faster than zxing-cpp's own and reads the same.
    if pixels.ndim == 2:
        return np.ascontiguousarray(pixels)
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _crop_around(gray: Image, box: Failed, margin: float) -> tuple[Image, tuple[int, int]]:
    pad_x = int((box.x1 - box.x0) * margin) + 4
    pad_y = int((box.y1 - box.y0) * margin) + 4
    x0, y0 = max(0, box.x0 - pad_x), max(0, box.y0 - pad_y)
    x1, y1 = min(gray.shape[1], box.x1 + pad_x), min(gray.shape[0], box.y1 + pad_y)
    return gray[y0:y1, x0:x1], (x0, y0)


def _unscale(code: DecodedCode, scale: float, dx: int, dy: int) -> DecodedCode:
    a, b, c, d = ((round(x / scale) + dx, round(y / scale) + dy) for x, y in code.corners)
    return DecodedCode(code.data, code.text, (a, b, c, d), code.decoder)


def _offset(code: DecodedCode, dx: int, dy: int) -> DecodedCode:
    if dx == dy == 0:
        return code
    a, b, c, d = ((x + dx, y + dy) for x, y in code.corners)
    return DecodedCode(code.data, code.text, (a, b, c, d), code.decoder)


def _unique(codes: list[DecodedCode]) -> list[DecodedCode]:
    seen: set[tuple[bytes, tuple[int, int]]] = set()
    out = []
    for code in codes:
        key = (code.data, (code.center[0] // 16, code.center[1] // 16))
        if key not in seen:
            seen.add(key)
            out.append(code)
    return out

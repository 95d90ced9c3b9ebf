"""Camera preview: centre-crop and scale a frame into the preview box, with a framing guide."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from terminal.screen import theme
from terminal.screen.layout import Layout
from terminal.screen.text import FontPair, fit

#: The face guide's height as a fraction of the preview's. A face must be about 140 px tall in a
#: 1280x720 frame to be detected (docs/faces.md); the oval asks for a face well above that.
FACE_GUIDE_HEIGHT = 0.62


def frame_to_image(frame: np.ndarray[Any, Any], size: tuple[int, int], *, mirror: bool) -> Image.Image:
    """An RGB (H×W×3) or grey (H×W) uint8 frame, centre-cropped to ``size``'s aspect and scaled.

    Nearest-neighbour sampling with cached index arrays: about 3 ms for 1280×720 → 491×368 here,
    where Pillow's antialiased resize takes 16 ms; a live preview does not need better.
    """
    if (
        frame.dtype != np.uint8
        or frame.ndim not in (2, 3)
        or (frame.ndim == 3 and frame.shape[2] not in (3, 4))
    ):
        raise ValueError(f"preview frame must be H×W, H×W×3 or H×W×4 uint8, not {frame.shape} {frame.dtype}")
    rows, cols = _sample_indices(frame.shape[0], frame.shape[1], size, mirror)
    scaled = frame.take(rows, axis=0).take(cols, axis=1)
    if scaled.ndim == 3 and scaled.shape[2] == 4:
        scaled = scaled[:, :, :3]
    image = Image.fromarray(np.ascontiguousarray(scaled))
    return image if image.mode == "RGB" else image.convert("RGB")


@lru_cache(maxsize=8)
def _sample_indices(
    height: int, width: int, size: tuple[int, int], mirror: bool
) -> tuple[np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.intp]]]:
    target_w, target_h = size
    if width * target_h > height * target_w:  # wider than the box: crop the sides
        crop_w, crop_h = height * target_w / target_h, float(height)
    else:
        crop_w, crop_h = float(width), width * target_h / target_w
    x0, y0 = (width - crop_w) / 2, (height - crop_h) / 2
    rows = (y0 + (np.arange(target_h) + 0.5) * crop_h / target_h).astype(np.intp)
    cols = (x0 + (np.arange(target_w) + 0.5) * crop_w / target_w).astype(np.intp)
    if mirror:
        cols = cols[::-1].copy()
    return np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)


def draw_guide(draw: ImageDraw.ImageDraw, lay: Layout) -> None:
    """Corner brackets around the centre square where the badge should be held."""
    x0, y0, x1, y1 = lay.preview
    side = round((y1 - y0) * 0.66)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left, top, right, bottom = cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2
    arm = side // 5
    w = lay.px(6)
    for x, y, dx, dy in (
        (left, top, 1, 1),
        (right, top, -1, 1),
        (left, bottom, 1, -1),
        (right, bottom, -1, -1),
    ):
        draw.rectangle(_norm(x, y, x + dx * arm, y + dy * w), fill=theme.GUIDE)
        draw.rectangle(_norm(x, y, x + dx * w, y + dy * arm), fill=theme.GUIDE)


def draw_face_guide(draw: ImageDraw.ImageDraw, lay: Layout, faces: FontPair, caption: str) -> None:
    """An oval in the middle of the preview where the face should be, with ``caption`` on a band below."""
    x0, y0, x1, y1 = lay.preview
    height = round((y1 - y0) * FACE_GUIDE_HEIGHT)
    width = round(height * 0.76)
    cx, cy = (x0 + x1) // 2, y0 + round((y1 - y0) * 0.44)
    box = (cx - width // 2, cy - height // 2, cx + width // 2, cy + height // 2)
    draw.ellipse(box, outline=theme.GUIDE, width=lay.px(5))
    band = lay.px(44)
    draw.rectangle((x0, y1 - band, x1 - 1, y1 - 1), fill=theme.PANEL)
    font, lines = fit(faces, caption, (x1 - x0) - 2 * lay.px(12), lay.px(26), min_size=lay.px(14), bold=True)
    draw.text((cx, y1 - band // 2), lines[0], font=font, fill=theme.TEXT, anchor="mm")


def _norm(x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

"""Where things go on the screen, computed once per size (1024×600, 800×480, …)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


def box_size(box: Box) -> tuple[int, int]:
    return (box[2] - box[0], box[3] - box[1])


@dataclass(frozen=True)
class Layout:
    """Status bar on top, preview left, card panel right, alert strip at the bottom."""

    width: int
    height: int
    scale: float
    margin: int
    status: Box
    preview: Box
    panel: Box
    footer: Box
    body: Box

    def px(self, value: float) -> int:
        """``value`` pixels at 600 px screen height, scaled to this screen."""
        return max(1, round(value * self.scale))


@lru_cache(maxsize=8)
def layout(width: int, height: int) -> Layout:
    scale = height / 600
    margin = round(14 * scale)
    status_h = round(44 * scale)
    footer_h = round(54 * scale)
    top, bottom = status_h + margin, height - footer_h - margin
    column = (width - 3 * margin) // 2
    body_h = bottom - top
    preview_w = column
    preview_h = min(body_h, preview_w * 3 // 4)
    if preview_h < preview_w * 3 // 4:
        preview_w = preview_h * 4 // 3
    py = top + (body_h - preview_h) // 2
    px = margin + (column - preview_w) // 2
    return Layout(
        width=width,
        height=height,
        scale=scale,
        margin=margin,
        status=(0, 0, width, status_h),
        preview=(px, py, px + preview_w, py + preview_h),
        panel=(2 * margin + column, top, width - margin, bottom),
        footer=(0, height - footer_h, width, height),
        body=(0, status_h, width, height),
    )

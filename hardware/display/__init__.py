"""Display backends behind one small interface, ``Display.show(image)``.

- :class:`NullDisplay` — headless; same code path, nothing shown.
- :class:`PngDisplay` — screenshots to a directory (tests, the demo).
- :class:`WindowDisplay` — a tkinter window for development (tkinter imported lazily).
- :class:`FramebufferDisplay` — the Pi: frames written into /dev/fb0 through a numpy memmap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardware.display.base import Display, DisplayConfigError, DisplayError, DisplayUnavailable, NullDisplay
from hardware.display.framebuffer import FramebufferDisplay
from hardware.display.png import PngDisplay

BACKENDS = ("null", "png", "window", "framebuffer")


def open_display(backend: str, **options: Any) -> Display:
    """The display called ``backend`` (one of :data:`BACKENDS`) built with ``options``."""
    if backend == "null":
        return NullDisplay()
    if backend == "png":
        return PngDisplay(Path(options.pop("directory")), **options)
    if backend == "framebuffer":
        return FramebufferDisplay(**options)
    if backend == "window":
        from hardware.display.window import WindowDisplay  # noqa: PLC0415  (tkinter only on demand)

        return WindowDisplay(**options)
    raise DisplayConfigError(f"display.backend: {backend!r} is not one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Display",
    "DisplayConfigError",
    "DisplayError",
    "DisplayUnavailable",
    "FramebufferDisplay",
    "NullDisplay",
    "PngDisplay",
    "open_display",
]

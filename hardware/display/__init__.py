"""Display backends behind one small interface, ``Display.show(image)``; found by name in
:data:`BACKENDS` (``hardware/display/backends.py``).

- :class:`NullDisplay` — headless; same code path, nothing shown.
- :class:`PngDisplay` — screenshots to a directory (tests, the demo).
- :class:`WindowDisplay` — a tkinter window for development (tkinter imported lazily).
- :class:`FramebufferDisplay` — the Pi: frames written into /dev/fb0 through a numpy memmap.
"""

from hardware.display.backends import (
    BACKENDS,
    DisplayBackend,
    DisplayOption,
    display_backend,
    open_display,
)
from hardware.display.base import Display, DisplayConfigError, DisplayError, DisplayUnavailable, NullDisplay
from hardware.display.framebuffer import FramebufferDisplay
from hardware.display.png import PngDisplay

__all__ = [
    "BACKENDS",
    "Display",
    "DisplayBackend",
    "DisplayConfigError",
    "DisplayError",
    "DisplayOption",
    "DisplayUnavailable",
    "FramebufferDisplay",
    "NullDisplay",
    "PngDisplay",
    "display_backend",
    "open_display",
]

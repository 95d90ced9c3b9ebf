"""The display interface: ``show(image)``; plus the headless :class:`NullDisplay` and its errors."""

from __future__ import annotations

from typing import Self

from PIL import Image

from kgate.errors import KgateError, UsageError


class DisplayError(KgateError, OSError):
    """The display could not be opened or written."""


class DisplayUnavailable(KgateError, ImportError):
    """The backend's library or device is not present here (no tkinter, no $DISPLAY, no /dev/fb0)."""


class DisplayConfigError(UsageError):
    """A ``[display]`` setting is wrong; the message names the key."""


class Display:
    """Shows full-screen frames rendered by ``terminal.screen.GateScreen``. This base shows nothing."""

    #: The native (width, height) if the backend has one; the screen should be rendered at this size.
    size: tuple[int, int] | None = None

    def show(self, image: Image.Image) -> None:
        """Put ``image`` on the screen; returns without waiting for vsync."""

    def close(self) -> None:
        """Release the device or window."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullDisplay(Display):
    """Headless: counts frames and keeps the last one (for tests and the demo)."""

    def __init__(self) -> None:
        self.frames = 0
        self.last: Image.Image | None = None

    def show(self, image: Image.Image) -> None:
        self.frames += 1
        self.last = image

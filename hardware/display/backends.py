"""The display backends by name, found as gpiozero finds its pin factories: ``[display] backend = NAME``.

Each :class:`DisplayBackend` says what it is, how to open it, which ``[display]`` options it takes
(and of what kind, so the config reader can check them and name the key), and whether it is
interactive (a window that takes the program's screen size and an ``on_key`` callback). tkinter is
imported only when a window is opened. Adding a backend means one module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from hardware.display.base import Display, DisplayConfigError, NullDisplay
from hardware.display.framebuffer import FramebufferDisplay
from hardware.display.png import PngDisplay

#: ``text``: a non-empty string; ``path``: a path (relative ones, and the default, are resolved against
#: the program's state directory); ``count``: a whole number >= 1.
OptionKind = Literal["text", "path", "count"]


@dataclass(frozen=True)
class DisplayOption:
    """One ``[display]`` option of a backend: its kind and, for a path, its default below the state dir."""

    kind: OptionKind
    default: str | None = None


@dataclass(frozen=True)
class DisplayBackend:
    """One display backend: a line for people, the opener, its options, and whether it is a window."""

    description: str
    open: Callable[..., Display]
    options: Mapping[str, DisplayOption] = field(default_factory=dict)
    interactive: bool = False


def _open_window(**options: Any) -> Display:
    from hardware.display.window import WindowDisplay  # noqa: PLC0415  (tkinter only on demand)

    return WindowDisplay(**options)


#: name → backend, in the order they are listed to people.
BACKENDS: Mapping[str, DisplayBackend] = MappingProxyType(
    {
        "null": DisplayBackend("headless: nothing is shown (the same code path)", NullDisplay),
        "png": DisplayBackend(
            "screenshots into a directory (tests, the demo)",
            PngDisplay,
            {
                "directory": DisplayOption("path", default="screens"),
                "prefix": DisplayOption("text"),
                "every": DisplayOption("count"),
            },
        ),
        "window": DisplayBackend(
            "a tkinter window for development",
            _open_window,
            {"title": DisplayOption("text")},
            interactive=True,
        ),
        "framebuffer": DisplayBackend(
            "the Pi's screen: frames written into /dev/fbN",
            FramebufferDisplay,
            {
                "device": DisplayOption("text"),
                "sysfs": DisplayOption("text"),
                "pixel_format": DisplayOption("text"),
            },
        ),
    }
)


def display_backend(name: object) -> DisplayBackend:
    """The backend called ``name``; :class:`DisplayConfigError` naming the choices otherwise."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise DisplayConfigError(f"display.backend: {name!r} is not one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def open_display(backend: str, **options: Any) -> Display:
    """The display called ``backend`` (a key of :data:`BACKENDS`) built with ``options``."""
    return display_backend(backend).open(**options)

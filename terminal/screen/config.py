"""Screen configuration: a frozen dataclass validated once, with messages naming the bad key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from terminal.i18n import DEFAULT_LANG, is_lang
from terminal.screen.errors import ScreenConfigError

# Searched in order; $KGATE_FONT_DIR first when set.
FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu",  # Debian / Raspberry Pi OS: apt install fonts-dejavu-core
    "/usr/share/fonts/TTF",  # Arch
    "/usr/share/fonts/dejavu-sans-fonts",  # Fedora
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/Library/Fonts",
    "/Library/Fonts",
)
FONT_REGULAR: tuple[str, ...] = ("DejaVuSans.ttf",)
FONT_BOLD: tuple[str, ...] = ("DejaVuSans-Bold.ttf",)


@dataclass(frozen=True)
class ScreenConfig:
    """Size and behaviour of the gate screen (1024×600 for the 7" display; 800×480 also common)."""

    width: int = 1024
    height: int = 600
    lang: str = DEFAULT_LANG  # language of status bar, alerts and idle prompt
    mirror_preview: bool = True  # people expect a mirror; decoding uses the unmirrored frame
    framing_guide: bool = True
    font_dirs: tuple[str, ...] = FONT_DIRS
    device_label: str = ""

    def __post_init__(self) -> None:
        for name, low, high in (("width", 320, 3840), ("height", 240, 2160)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ScreenConfigError(f"screen.{name}: {value!r} must be an integer in [{low}, {high}]")
        if self.width < self.height:
            raise ScreenConfigError(
                f"screen.width: {self.width} must not be less than screen.height (landscape)"
            )
        if not is_lang(self.lang):
            raise ScreenConfigError(f"screen.lang: {self.lang!r} must be one of kk, ru, en")
        if not self.font_dirs:
            raise ScreenConfigError("screen.font_dirs: must name at least one directory")

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def search_dirs(self) -> tuple[Path, ...]:
        """Font directories in search order, ``$KGATE_FONT_DIR`` first."""
        extra = os.environ.get("KGATE_FONT_DIR")
        dirs = ((extra,) if extra else ()) + self.font_dirs
        return tuple(Path(d).expanduser() for d in dirs)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ScreenConfig:
        """Build from a TOML ``[screen]`` table; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        values = dict(data)
        for key in values:
            if key not in known:
                raise ScreenConfigError(f"screen.{key}: unknown setting")
        if "font_dirs" in values:
            values["font_dirs"] = tuple(values["font_dirs"])
        return cls(**values)

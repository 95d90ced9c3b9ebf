"""Screenshots: every shown frame (or every n-th) written as a numbered PNG file."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from hardware.display.base import Display, DisplayError


class PngDisplay(Display):
    """Writes ``DIR/PREFIX-00001.png`` … ; :meth:`save` writes a named screenshot."""

    def __init__(self, directory: Path | str, *, prefix: str = "frame", every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every: {every} must be at least 1")
        self.directory = Path(directory)
        self.prefix = prefix
        self.every = every
        self.frames = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DisplayError(f"cannot create screenshot directory {self.directory}: {exc}") from exc

    def show(self, image: Image.Image) -> None:
        self.frames += 1
        if (self.frames - 1) % self.every == 0:
            self.save(image, f"{self.prefix}-{self.frames:05d}")

    def save(self, image: Image.Image, name: str) -> Path:
        """Write ``image`` as ``DIR/name.png`` and return the path."""
        path = self.directory / f"{name}.png"
        try:
            image.save(path, format="PNG", compress_level=1)
        except OSError as exc:
            raise DisplayError(f"cannot write screenshot {path}: {exc}") from exc
        return path

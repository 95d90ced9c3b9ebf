"""A camera frame: the full-resolution image the decoder reads, plus a small preview for the screen."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

#: An 8-bit image as OpenCV holds it: ``(h, w)`` gray or ``(h, w, 3)`` BGR.
Image = npt.NDArray[np.uint8]

#: Long side of the preview stream shown on the gate screen. Never decode from it: on camera-size
#: frames the preview halves the reads.
PREVIEW_LONG_SIDE = 640


@dataclass(frozen=True)
class Region:
    """A rectangle of a frame in fractions of its width and height (resolution independent).

    The gate screen draws its framing guide from the same region the decoder crops to.
    """

    left: float = 0.0
    top: float = 0.0
    right: float = 1.0
    bottom: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.left < self.right <= 1.0 and 0.0 <= self.top < self.bottom <= 1.0):
            raise ValueError(f"region {self} must satisfy 0 <= left < right <= 1 and 0 <= top < bottom <= 1")

    @property
    def is_full(self) -> bool:
        return (self.left, self.top, self.right, self.bottom) == (0.0, 0.0, 1.0, 1.0)

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` in pixels for a frame of the given size."""
        return (
            round(self.left * width),
            round(self.top * height),
            round(self.right * width),
            round(self.bottom * height),
        )


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    ``image`` is the full-resolution picture (BGR or gray); ``timestamp`` is the source clock's
    monotonic time in seconds when it was captured; ``index`` counts frames from the source's open.
    Sources with a hardware preview stream (Picamera2's ``lores``) pass it as ``preview_image``;
    otherwise :meth:`preview` downscales ``image``.
    """

    image: Image
    timestamp: float
    index: int = 0
    origin: str = ""
    preview_image: Image | None = field(default=None, repr=False, compare=False)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def gray(self) -> Image:
        """The luminance plane, which is all a QR decoder needs."""
        if self.image.ndim == 2:
            return self.image
        return np.asarray(cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)

    def crop(self, region: Region) -> tuple[Image, tuple[int, int]]:
        """The full-resolution pixels inside ``region`` and the crop's top-left offset."""
        if region.is_full:
            return self.image, (0, 0)
        x0, y0, x1, y1 = region.pixels(self.width, self.height)
        return self.image[y0:y1, x0:x1], (x0, y0)

    def preview(self, long_side: int = PREVIEW_LONG_SIDE) -> Image:
        """A small copy for the screen (the source's own preview stream when it has one)."""
        if self.preview_image is not None:
            return self.preview_image
        scale = long_side / max(self.width, self.height)
        if scale >= 1.0:
            return self.image
        size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
        return np.asarray(cv2.resize(self.image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)

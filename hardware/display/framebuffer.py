"""Linux framebuffer backend for the Pi: write frames straight into ``/dev/fb0`` via a numpy memmap.

Geometry comes from sysfs (``/sys/class/graphics/fb0/{virtual_size,bits_per_pixel,stride}``); the
pixel format is RGB565 at 16 bpp, BGR at 24 and XRGB8888 (bytes B, G, R, X) at 32 — what the vc4
DRM driver's fbdev emulation exposes on Raspberry Pi OS. No dependency beyond numpy and Pillow.
The process needs write access to /dev/fb0 (group ``video``) and nothing else must draw on it
(no desktop session: boot to console, ``systemctl set-default multi-user.target``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hardware.display.base import Display, DisplayError, DisplayUnavailable

FORMATS = {16: "RGB565", 24: "BGR", 32: "BGRX"}
BYTES_PER_PIXEL = {"RGB565": 2, "BGR": 3, "BGRX": 4, "RGBX": 4}


@dataclass(frozen=True)
class FramebufferGeometry:
    width: int
    height: int
    bits_per_pixel: int
    stride: int  # bytes per line, may exceed width × bytes per pixel

    @classmethod
    def from_sysfs(cls, sysfs: Path) -> FramebufferGeometry:
        """Read the geometry the kernel reports for the framebuffer at ``sysfs``."""
        try:
            width, height = (int(v) for v in (sysfs / "virtual_size").read_text().strip().split(","))
            bpp = int((sysfs / "bits_per_pixel").read_text())
            stride = int((sysfs / "stride").read_text())
        except FileNotFoundError as exc:
            raise DisplayUnavailable(f"no framebuffer at {sysfs}: {exc.filename} is missing") from exc
        except (OSError, ValueError) as exc:
            raise DisplayError(f"cannot read framebuffer geometry from {sysfs}: {exc}") from exc
        return cls(width, height, bpp, stride)


def encode(
    rgb: np.ndarray[Any, np.dtype[np.uint8]], pixel_format: str
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """H×W×3 RGB → H×(W·bytes per pixel) in the framebuffer's ``pixel_format``."""
    height, width = rgb.shape[:2]
    if pixel_format == "RGB565":
        r, g, b = (rgb[..., i].astype(np.uint16) for i in range(3))
        packed = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)
        return packed.astype("<u2").view(np.uint8).reshape(height, width * 2)
    order = {"BGR": (2, 1, 0), "BGRX": (2, 1, 0), "RGBX": (0, 1, 2)}[pixel_format]
    out = np.empty((height, width, BYTES_PER_PIXEL[pixel_format]), np.uint8)
    out[..., :3] = rgb[..., order]
    if out.shape[2] == 4:
        out[..., 3] = 255
    return out.reshape(height, -1)


class FramebufferDisplay(Display):
    """Full-screen frames on a Linux framebuffer (the Pi's official 7" display via DSI: /dev/fb0).

    ``device`` and ``sysfs`` can point at a regular file and a fake directory (tests).
    """

    def __init__(
        self,
        device: Path | str = "/dev/fb0",
        *,
        sysfs: Path | str | None = None,
        pixel_format: str | None = None,
    ) -> None:
        self.device = Path(device)
        self.sysfs = Path(sysfs) if sysfs is not None else Path("/sys/class/graphics") / self.device.name
        self.geometry = geo = FramebufferGeometry.from_sysfs(self.sysfs)
        fmt = pixel_format or FORMATS.get(geo.bits_per_pixel)
        if fmt not in BYTES_PER_PIXEL:
            raise DisplayError(
                f"framebuffer {self.device}: unsupported format {fmt or geo.bits_per_pixel} bpp"
            )
        self.pixel_format = fmt
        if geo.width * BYTES_PER_PIXEL[fmt] > geo.stride:
            raise DisplayError(f"framebuffer {self.device}: stride {geo.stride} < width {geo.width} × {fmt}")
        self.size = self._size = (geo.width, geo.height)
        try:
            self._map: np.memmap[Any, np.dtype[np.uint8]] | None = np.memmap(
                self.device, dtype=np.uint8, mode="r+", shape=(geo.height, geo.stride)
            )
        except FileNotFoundError as exc:
            raise DisplayUnavailable(f"no framebuffer device {self.device}") from exc
        except (OSError, ValueError) as exc:
            raise DisplayError(f"cannot map framebuffer {self.device}: {exc}") from exc

    def show(self, image: Image.Image) -> None:
        if self._map is None:
            raise DisplayError(f"framebuffer {self.device} is closed")
        if image.size != self._size:
            image = image.resize(self._size, Image.Resampling.BILINEAR)
        pixels = encode(np.asarray(image.convert("RGB")), self.pixel_format)
        self._map[:, : pixels.shape[1]] = pixels

    def close(self) -> None:
        if self._map is not None:
            self._map.flush()
            self._map = None

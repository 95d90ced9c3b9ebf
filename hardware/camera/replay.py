"""Replay camera: image files, folders of images and video files, played back as camera frames.

Used by ``kgate scan``, the demo and the tests. An image file is read with a size cap and refused by
the pixel count in its header before it is decoded (:data:`MAX_IMAGE_PIXELS`), so a small PNG that
claims 20000×20000 pixels costs a header read, not 1.2 GB of frame. It is a real peer of the
hardware sources, with failure switches the tests drive "from the physical side":
:meth:`ReplaySource.unplug` and :meth:`ReplaySource.stall` make the next reads fail like a pulled
USB cable or a hung sensor.
"""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

from hardware.camera.frame import Frame, Image
from hardware.camera.source import Clock, FrameSource
from hardware.errors import CameraLost, CameraNotFound, CameraStalled, EndOfReplay, UnreadableFrame
from kgate.bounded import MiB, read_limited
from kgate.errors import InputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg"})
#: Largest image decoded: 40 megapixels, more than three times a 12 MP Pi camera still (1.2 GB at 20000²).
MAX_IMAGE_PIXELS = 40_000_000
#: Largest image file read; a 40 MP photo as JPEG is about 20 MiB.
MAX_IMAGE_BYTES = 64 * MiB


def expand_paths(paths: Iterable[str | PathLike[str]]) -> list[tuple[Path, str]]:
    """Files to replay, in order, each with its name as given: folders become their sorted media files."""
    out: list[tuple[Path, str]] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            out.extend(
                (p, str(p))
                for p in sorted(path.iterdir())
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            )
        else:
            out.append((path, os.fspath(item)))
    return out


class ReplaySource(FrameSource):
    """Frames from files instead of a camera.

    ``paths``: image files, folders (their images and videos, sorted by name) and video files, played
    in order; a video yields each of its frames. ``loop``: start again after the last file instead of
    raising :class:`~hardware.errors.EndOfReplay`. ``clock``: the monotonic clock that stamps frames.
    ``gray``: load images as single-channel luminance. A file that cannot be decoded raises
    :class:`~hardware.errors.UnreadableFrame` naming it, and the next read goes on with the next file.
    """

    def __init__(
        self,
        paths: Iterable[str | PathLike[str]],
        *,
        loop: bool = False,
        clock: Clock = time.monotonic,
        gray: bool = False,
    ) -> None:
        super().__init__(clock)
        self._files = expand_paths(paths)
        self.loop = loop
        self.gray = gray
        self._position = 0
        self._video: Any = None
        self._video_name = ""
        self._unplugged = False
        self._stalled = False

    # -- failure switches for tests ----------------------------------------------------------------
    def unplug(self) -> None:
        """Simulate pulling the cable: reads raise CameraLost, reopening raises CameraNotFound."""
        self._unplugged = True

    def stall(self) -> None:
        """Simulate a hung sensor: reads raise CameraStalled (as a real source does after its timeout)."""
        self._stalled = True

    def replug(self) -> None:
        """Undo :meth:`unplug` and :meth:`stall`; the next open/read works again."""
        self._unplugged = False
        self._stalled = False

    # -- FrameSource ---------------------------------------------------------------------------------
    def _open(self) -> None:
        if self._unplugged:
            raise CameraNotFound("replay camera is unplugged")
        if not self._files:
            raise CameraNotFound("replay source has no files to play")
        self._position = 0

    def _close(self) -> None:
        self._release_video()

    def _read(self) -> Frame:
        if self._unplugged:
            raise CameraLost("replay camera was unplugged")
        if self._stalled:
            raise CameraStalled("replay camera stalled: no frame")
        while True:
            if self._video is not None:
                ok, image = self._video.read()
                if ok:
                    return self._make(np.asarray(image, dtype=np.uint8), self._video_name)
                self._release_video()
                continue
            if self._position >= len(self._files):
                if not self.loop:
                    raise EndOfReplay("replay finished")
                self._position = 0
            path, name = self._files[self._position]
            self._position += 1
            if path.suffix.lower() in VIDEO_SUFFIXES:
                self._start_video(path, name)
                continue
            return self._make(self._load_image(path, name), name)

    # -- helpers --------------------------------------------------------------------------------------
    @property
    def paths(self) -> list[Path]:
        """The files this source replays, folders expanded."""
        return [path for path, _ in self._files]

    def _make(self, image: Image, name: str) -> Frame:
        if self.gray and image.ndim == 3:
            image = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        timestamp, index = self._stamp()
        return Frame(image=image, timestamp=timestamp, index=index, origin=name)

    def _load_image(self, path: Path, name: str) -> Image:
        try:
            raw = read_limited(path, MAX_IMAGE_BYTES)
        except InputError as exc:
            raise UnreadableFrame(name, exc.reason.removeprefix("is ")) from None
        return decode_image(raw, name, gray=self.gray)

    def _start_video(self, path: Path, name: str) -> None:
        if not path.is_file():
            raise UnreadableFrame(name, "no such file")
        video = cv2.VideoCapture(str(path))
        if not video.isOpened():
            raise UnreadableFrame(name, "not a readable video")
        self._video, self._video_name = video, name

    def _release_video(self) -> None:
        if self._video is not None:
            self._video.release()
        self._video, self._video_name = None, ""


def decode_image(raw: bytes, name: str, *, gray: bool = False) -> Image:
    """Decode an image file's bytes to BGR (or luminance) pixels, refused by its header's size first.

    Pillow's ``Image.open`` parses only the header, so an image over :data:`MAX_IMAGE_PIXELS` is
    refused before any pixel is decoded. Pillow decodes, not OpenCV: a truncated or lying file is
    then an exception, where libpng under OpenCV prints its own lines on stderr. EXIF orientation is
    applied, as ``cv2.imdecode`` does.
    """
    too_large = f"has more than the {MAX_IMAGE_PIXELS:,} pixels a frame may have"
    try:
        with warnings.catch_warnings():  # Pillow warns of "bombs" on stderr; the refusal below is ours
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(raw)) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    too_large = (
                        f"is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} a frame may have"
                    )
                    pixels = None
                else:
                    upright = ImageOps.exif_transpose(image)
                    pixels = np.asarray(upright.convert("L" if gray else "RGB"), dtype=np.uint8)
    except PILImage.DecompressionBombError:
        pixels = None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):  # unknown format, bad or short data
        raise UnreadableFrame(name) from None
    if pixels is None:
        raise UnreadableFrame(name, too_large)
    if gray:
        return np.ascontiguousarray(pixels)
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), dtype=np.uint8)

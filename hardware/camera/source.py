"""The frame-source interface every camera implements, and the clock type sources take."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterator
from types import TracebackType

from hardware.camera.frame import Frame
from hardware.errors import EndOfReplay

#: A monotonic clock in seconds; tests inject a fake one.
Clock = Callable[[], float]


class FrameSource(abc.ABC):
    """Where frames come from: a Pi camera, a USB webcam, or files replayed for tests and the demo.

    Use as a context manager (``with source: frame = source.read()``). ``read()`` blocks until the
    next full-resolution frame and raises :class:`~hardware.errors.CameraLost` or
    :class:`~hardware.errors.CameraStalled` when the camera stops; the caller closes, waits and
    reopens.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._index = 0
        self._opened = False

    @property
    def is_open(self) -> bool:
        return self._opened

    def open(self) -> None:
        """Start the camera; idempotent."""
        if not self._opened:
            self._open()
            self._opened = True
            self._index = 0

    def close(self) -> None:
        """Stop the camera and release the device; idempotent, never raises for a lost camera."""
        if self._opened:
            self._opened = False
            self._close()

    def read(self) -> Frame:
        """The next full-resolution frame."""
        if not self._opened:
            self.open()
        frame = self._read()
        self._index += 1
        return frame

    def frames(self) -> Iterator[Frame]:
        """Frames until the source ends (only replay sources end)."""
        while True:
            try:
                yield self.read()
            except EndOfReplay:
                return

    def _stamp(self) -> tuple[float, int]:
        """Capture time and index for the frame being read."""
        return self._clock(), self._index

    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    @abc.abstractmethod
    def _read(self) -> Frame: ...

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""USB webcam through OpenCV's V4L2 backend (development laptops, or a Pi without a Camera Module).

Connect: plug a UVC webcam into a USB port (USB 3 on a Pi 4/5 for 1080p); it appears as
``/dev/video0``. The service user needs the ``video`` group.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from hardware.camera.frame import Frame
from hardware.camera.source import Clock, FrameSource
from hardware.errors import CameraBackendMissing, CameraLost, CameraNotFound, CameraStalled


class OpenCVSource(FrameSource):
    """Frames from a V4L2 camera via ``cv2.VideoCapture``.

    ``device``: index (``0``) or path (``/dev/video0``). ``size``: requested capture size; MJPG is
    requested so 1920x1080 runs at full frame rate over USB 2. ``read_timeout``: seconds without a
    frame before :class:`~hardware.errors.CameraStalled`.
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        size: tuple[int, int] = (1920, 1080),
        fps: float = 30.0,
        read_timeout: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self.device = device
        self.size = size
        self.fps = fps
        self.read_timeout = read_timeout
        self._capture: Any = None

    def _open(self) -> None:
        try:
            import cv2  # noqa: PLC0415 - optional backend, imported only when used
        except ImportError as exc:
            raise CameraBackendMissing(
                "OpenCV (cv2) is not installed: pip install opencv-python-headless"
            ) from exc
        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise CameraNotFound(f"no camera at {self.device!r} (is it plugged in, is the user in 'video'?)")
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # always the newest frame, not a queued old one
        if hasattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC"):
            capture.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout * 1000)
        self._capture = capture

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture = None

    def _read(self) -> Frame:
        started = time.monotonic()
        ok, image = self._capture.read()
        if not ok or image is None:
            if isinstance(self.device, str) and not os.path.exists(self.device):
                raise CameraLost(f"camera {self.device} disappeared (unplugged?)")
            if time.monotonic() - started >= self.read_timeout:
                raise CameraStalled(f"camera {self.device!r} sent no frame for {self.read_timeout:g} s")
            raise CameraLost(f"camera {self.device!r} stopped delivering frames")
        timestamp, index = self._stamp()
        return Frame(np.asarray(image, dtype=np.uint8), timestamp, index, origin=f"v4l2:{self.device}")

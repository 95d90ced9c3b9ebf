"""Raspberry Pi Camera Module (3) through picamera2/libcamera.

Connect: the camera's ribbon cable to the CAM/DISP connector (Pi 5: CAM0 or CAM1, the 22-pin cable;
Pi 4: the CAMERA port, contacts facing the HDMI side). picamera2 comes from Raspberry Pi OS, never
pip: ``sudo apt install python3-picamera2`` and create the venv with
``python3 -m venv --system-site-packages``. Check with ``rpicam-hello --list-cameras``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import cv2
import numpy as np

from hardware.camera.frame import Frame
from hardware.camera.source import Clock, FrameSource
from hardware.errors import CameraBackendMissing, CameraLost, CameraNotFound, CameraStalled

#: libcamera's ``AfModeEnum.Continuous``; the Camera Module 3 refocuses as children step closer.
_AF_CONTINUOUS = 2


class Picamera2Source(FrameSource):
    """Frames from a libcamera camera: ``main`` at full resolution for decoding, ``lores`` for the screen.

    ``size``: the main stream (decode) size, BGR. ``preview_size``: the lores stream, YUV420 (the
    only lores format a Pi 4's ISP offers), converted to BGR for the screen. ``read_timeout``:
    seconds without a frame before :class:`~hardware.errors.CameraStalled`.
    """

    def __init__(
        self,
        camera_num: int = 0,
        *,
        size: tuple[int, int] = (1920, 1080),
        preview_size: tuple[int, int] = (640, 360),
        read_timeout: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self.camera_num = camera_num
        self.size = size
        self.preview_size = preview_size
        self.read_timeout = read_timeout
        self._camera: Any = None

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2  # noqa: PLC0415 - only on a Pi, from apt
        except ImportError as exc:
            raise CameraBackendMissing(
                "picamera2 is not installed: on Raspberry Pi OS run 'sudo apt install python3-picamera2' "
                "and create the venv with --system-site-packages"
            ) from exc
        try:
            camera = Picamera2(self.camera_num)
        except (IndexError, RuntimeError) as exc:
            raise CameraNotFound(f"no Pi camera {self.camera_num} ({exc}); check the ribbon cable") from exc
        # "RGB888" in libcamera is B,G,R byte order in memory: exactly OpenCV's BGR.
        config = camera.create_video_configuration(
            main={"size": self.size, "format": "RGB888"},
            lores={"size": self.preview_size, "format": "YUV420"},
            buffer_count=4,
        )
        camera.configure(config)
        camera.start()
        with contextlib.suppress(RuntimeError):  # fixed-focus modules (v1, v2, HQ) have no autofocus
            camera.set_controls({"AfMode": _AF_CONTINUOUS})
        self._camera = camera

    def _close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()

    def _read(self) -> Frame:
        try:
            job = self._camera.capture_arrays(["main", "lores"], wait=False)
            (main, lores), _metadata = self._camera.wait(job, timeout=self.read_timeout)
        except TimeoutError as exc:
            raise CameraStalled(f"Pi camera sent no frame for {self.read_timeout:g} s") from exc
        except RuntimeError as exc:
            raise CameraLost(f"Pi camera failed: {exc}") from exc
        preview = np.asarray(cv2.cvtColor(lores, cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)
        timestamp, index = self._stamp()
        return Frame(
            np.asarray(main, dtype=np.uint8),
            timestamp,
            index,
            origin=f"picamera2:{self.camera_num}",
            preview_image=preview,
        )

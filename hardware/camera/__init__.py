"""Camera sources behind one small interface: Pi camera, USB webcam, and file replay.

Backends are found by name in :data:`BACKENDS` (``hardware/camera/backends.py``); ``[camera]`` is a
:class:`CameraConfig`. Hardware libraries (picamera2, V4L2 via OpenCV) are imported only when a source
is opened, so everything here imports and runs on a laptop.
"""

from hardware.camera.backends import BACKENDS, CameraBackend, camera_backend, open_camera
from hardware.camera.config import CameraConfig
from hardware.camera.frame import PREVIEW_LONG_SIDE, Frame, Image, Region
from hardware.camera.opencv import OpenCVSource
from hardware.camera.picamera import Picamera2Source
from hardware.camera.replay import ReplaySource
from hardware.camera.source import Clock, FrameSource

__all__ = [
    "BACKENDS",
    "PREVIEW_LONG_SIDE",
    "CameraBackend",
    "CameraConfig",
    "Clock",
    "Frame",
    "FrameSource",
    "Image",
    "OpenCVSource",
    "Picamera2Source",
    "Region",
    "ReplaySource",
    "camera_backend",
    "open_camera",
]

"""Camera sources behind one small interface: Pi camera, USB webcam, and file replay.

Hardware libraries (picamera2, V4L2 via OpenCV) are imported only when a source is opened, so
everything here imports and runs on a laptop.
"""

from hardware.camera.frame import PREVIEW_LONG_SIDE, Frame, Image, Region
from hardware.camera.opencv import OpenCVSource
from hardware.camera.picamera import Picamera2Source
from hardware.camera.replay import ReplaySource
from hardware.camera.source import Clock, FrameSource

__all__ = [
    "PREVIEW_LONG_SIDE",
    "Clock",
    "Frame",
    "FrameSource",
    "Image",
    "OpenCVSource",
    "Picamera2Source",
    "Region",
    "ReplaySource",
]

"""The camera backends by name, found as gpiozero finds its pin factories: ``[camera] backend = NAME``.

Each :class:`CameraBackend` says what it is, how to build its frame source from a
:class:`~hardware.camera.config.CameraConfig`, and what it requires of that config. The source's
module (and so picamera2 or OpenCV) is imported only when that backend is opened. Adding a backend
means one module and one entry in :data:`BACKENDS`; the terminal's config reader lists these names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from hardware.errors import CameraConfigError

if TYPE_CHECKING:
    from hardware.camera.config import CameraConfig
    from hardware.camera.source import FrameSource


def _no_requirements(config: CameraConfig) -> None:
    """Every ``[camera]`` setting the reader accepted is fine for this backend."""


@dataclass(frozen=True)
class CameraBackend:
    """One camera backend: a line for people, the opener, and its check of ``[camera]``."""

    description: str
    open: Callable[[CameraConfig], FrameSource]
    check: Callable[[CameraConfig], None] = _no_requirements


def _open_replay(config: CameraConfig) -> FrameSource:
    from hardware.camera.replay import ReplaySource  # noqa: PLC0415 - OpenCV only when opened

    return ReplaySource(config.paths, loop=config.loop)


def _check_replay(config: CameraConfig) -> None:
    if not config.paths:
        raise CameraConfigError("camera.paths: the replay backend needs at least one path")


def _open_opencv(config: CameraConfig) -> FrameSource:
    from hardware.camera.opencv import OpenCVSource  # noqa: PLC0415

    return OpenCVSource(
        config.device, size=config.size, fps=config.fps, read_timeout=config.read_timeout_seconds
    )


def _open_picamera2(config: CameraConfig) -> FrameSource:
    from hardware.camera.picamera import Picamera2Source  # noqa: PLC0415 - picamera2 only when opened

    assert isinstance(config.device, int)  # _check_picamera2 ran when the config was built
    return Picamera2Source(
        config.device,
        size=config.size,
        preview_size=config.preview_size,
        read_timeout=config.read_timeout_seconds,
    )


def _check_picamera2(config: CameraConfig) -> None:
    if not isinstance(config.device, int):
        raise CameraConfigError("camera.device: the picamera2 backend takes a camera number (0 or 1)")


#: name → backend, in the order they are listed to people.
BACKENDS: Mapping[str, CameraBackend] = MappingProxyType(
    {
        "replay": CameraBackend(
            "image files, folders or videos played as frames", _open_replay, _check_replay
        ),
        "opencv": CameraBackend("a V4L2 webcam through OpenCV (index or /dev/videoN)", _open_opencv),
        "picamera2": CameraBackend(
            "a Raspberry Pi camera module through picamera2", _open_picamera2, _check_picamera2
        ),
    }
)


def camera_backend(name: str) -> CameraBackend:
    """The backend called ``name``; :class:`CameraConfigError` naming the choices otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise CameraConfigError(f"camera.backend: {name!r} is not one of {', '.join(BACKENDS)}") from None


def open_camera(config: CameraConfig) -> FrameSource:
    """The frame source ``config`` describes (built, not yet opened: ``read()`` opens it)."""
    return camera_backend(config.backend).open(config)

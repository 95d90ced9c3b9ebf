"""Errors of the hardware layer (camera, feedback devices).

Base classes subclass :class:`HardwareError`; leaves also subclass the closest builtin, as gpiozero's
``BadPinFactory(GPIOZeroError, ImportError)`` does. ``CameraLost`` and ``CameraStalled`` are
*retryable* (close, wait, reopen); ``CameraUnavailable`` means the camera cannot be used at all.
"""

from __future__ import annotations

from kgate.errors import KgateError, UsageError


class HardwareError(KgateError):
    """Base class of errors raised by anything that touches the physical world."""

    exit_code = 3


class CameraError(HardwareError):
    """Base class of camera errors."""


class CameraConfigError(CameraError, UsageError):
    """A ``[camera]`` setting is wrong for the chosen backend; the message names the key."""

    exit_code = UsageError.exit_code


class CameraUnavailable(CameraError):
    """The camera cannot be used at all; not worth retrying until someone fixes the setup."""


class CameraNotFound(CameraUnavailable, OSError):
    """No camera answers at the configured device, or it is busy (another process has it open)."""


class CameraBackendMissing(CameraUnavailable, ImportError):
    """The Python library for this camera (picamera2, OpenCV) is not installed."""


class CameraRetryable(CameraError):
    """The camera was working and stopped; close it, wait, and open it again."""


class CameraLost(CameraRetryable, ConnectionError):
    """The camera went away mid-stream (USB unplugged, ribbon cable loose, driver reset)."""


class CameraStalled(CameraRetryable, TimeoutError):
    """No frame arrived within the read timeout; a hung camera must trigger a restart."""


class UnreadableFrame(CameraError, ValueError):
    """A replayed image or video file could not be decoded; the source moves on to the next one."""

    def __init__(self, path: str, reason: str = "not a readable image or video") -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


class EndOfReplay(CameraError, EOFError):
    """A replay source without ``loop`` has delivered all its frames."""

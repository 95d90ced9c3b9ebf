"""``[camera]`` as plain data: which backend, at what size, and the decode region (the framing guide).

Built by the terminal's config reader (terminal/config.py) from TOML; the chosen backend's own
requirements (a replay needs paths, picamera2 a camera number) are checked here, once, through
:data:`hardware.camera.backends.BACKENDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hardware.camera.backends import camera_backend
from hardware.camera.frame import Region


@dataclass(frozen=True)
class CameraConfig:
    """The frame source's settings; ``backend`` is a key of :data:`~hardware.camera.backends.BACKENDS`."""

    backend: str = "picamera2"
    device: int | str = 0
    paths: tuple[Path, ...] = ()
    loop: bool = True
    size: tuple[int, int] = (1920, 1080)
    preview_size: tuple[int, int] = (640, 360)
    fps: float = 30.0
    region: Region = field(default_factory=Region)
    read_timeout_seconds: float = 2.0

    def __post_init__(self) -> None:
        camera_backend(self.backend).check(self)
